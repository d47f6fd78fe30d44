"use strict";
// Every admin page (templates/admin/base_site.html): the admin's widgets that
// scripts build get the accessible names axe-core asks for.
//
// - The autocomplete boxes (select2, e.g. a team member's user): the combobox
//   is named by its field's label and then the value chosen ("User: alice"),
//   not by the value alone, which is nothing before one is chosen
//   (aria-input-field-name). The text showing the value is plain text inside
//   the combobox, not a read-only textbox of its own without a name. Open,
//   the combobox names the list it controls (aria-controls, which ARIA 1.2
//   requires of an expanded combobox; select2 sets only aria-owns), and the
//   search box in the list is named by the same label.
// - The two-list pickers (filter_horizontal, e.g. a user's groups): the
//   filter box's label is an icon named by aria-label, which a <span> without
//   a role may not carry (aria-prohibited-attr): it is an image.
//
// All are built after the page has loaded (and again for each inline row
// added, or when a list opens), so a MutationObserver names them whenever
// they appear.
(function () {
  let labelCount = 0;

  function labelIdFor(select) {
    if (!select.id) return null;
    const label = document.querySelector(`label[for="${CSS.escape(select.id)}"]`);
    if (!label) return null;
    // An id of its own, not derived from the row's prefix: the inline's
    // script renumbers ids like "id_memberships-2-user" when a row goes.
    if (!label.id) label.id = `admin-label-${++labelCount}`;
    return label.id;
  }

  function nameAutocomplete(combobox) {
    if (combobox.dataset.named) return;
    const container = combobox.closest(".select2-container");
    const select = container && container.previousElementSibling;
    if (!select || select.tagName !== "SELECT") return;
    const labelId = labelIdFor(select);
    if (!labelId) return;
    const rendered = combobox.querySelector(".select2-selection__rendered");
    if (rendered) {
      rendered.removeAttribute("role");
      rendered.removeAttribute("aria-readonly");
    }
    const shown = rendered && rendered.id ? ` ${rendered.id}` : "";
    combobox.setAttribute("aria-labelledby", labelId + shown);
    combobox.dataset.named = "true";
    combobox.dataset.labelId = labelId;
  }

  function nameOpenList(combobox) {
    const list = combobox.getAttribute("aria-owns");
    if (list) combobox.setAttribute("aria-controls", list);
    else combobox.removeAttribute("aria-controls");
    if (!list || !combobox.dataset.labelId) return;
    const search = document.querySelector(`.select2-search__field[aria-controls="${CSS.escape(list)}"]`);
    if (search && !search.hasAttribute("aria-labelledby")) {
      search.setAttribute("aria-labelledby", combobox.dataset.labelId);
    }
  }

  function nameAll() {
    document.querySelectorAll('.select2-selection[role="combobox"]').forEach((combobox) => {
      nameAutocomplete(combobox);
      nameOpenList(combobox);
    });
    document
      .querySelectorAll(".search-label-icon[aria-label]:not([role])")
      .forEach((icon) => icon.setAttribute("role", "img"));
  }

  // An autocomplete's open list goes inside the page's content (the <main>
  // landmark), not at the end of <body> outside every landmark (axe-core:
  // region). select2 reads its options from data- attributes; this script is
  // deferred, so it runs before the admin's autocomplete.js starts select2
  // (on DOMContentLoaded), and rows added later are copies of these selects.
  const content = document.getElementById("content");
  if (content) {
    document.querySelectorAll("select.admin-autocomplete").forEach((select) => {
      if (!select.dataset.dropdownParent) select.dataset.dropdownParent = "#content";
    });
  }

  nameAll();
  new MutationObserver(nameAll).observe(document.documentElement, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["aria-owns"],
  });
})();

// The audit events list (admin-audit.css): on a phone each event stacks as
// "Column: value" lines, so each cell is given its column's heading. Without
// this script the list stays a table, scrolling sideways in its box.
(function () {
  const table = document.querySelector("body.model-auditevent.change-list #result_list");
  if (!table || !table.tHead) return;
  const headings = [...table.tHead.rows[0].cells].map((th) =>
    (th.querySelector(".text") || th).textContent.trim(),
  );
  for (const row of table.tBodies[0].rows) {
    [...row.cells].forEach((cell, column) => {
      if (headings[column]) cell.dataset.label = headings[column];
    });
  }
  table.dataset.labelled = "true";
})();
