// Small progressive enhancements; every page works without them.
document.documentElement.classList.add("js");

// A live region of the page's, made once: `role` status (polite) or alert.
function liveRegion(id, className, role) {
  let region = document.getElementById(id);
  if (!region) {
    region = document.createElement("p");
    region.id = id;
    region.className = className;
    region.setAttribute("role", role);
    document.body.append(region);
  }
  return region;
}

const copyStatus = () => liveRegion("copy-status", "visually-hidden", "status");

// Made at load, on a page with something to copy: a live region made as it
// speaks is often not heard.
document.addEventListener("DOMContentLoaded", () => {
  if (document.querySelector("[data-copy]")) copyStatus();
});

document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  // Its own label kept once: a second click within the pause would keep "Copied".
  const label = button.dataset.label || (button.dataset.label = button.textContent);
  const what = button.getAttribute("aria-label")?.replace(/^Copy /, "") || "it";
  const show = (said, spoken) => {
    button.textContent = said;
    clearTimeout(button.copyTimer);
    button.copyTimer = setTimeout(() => { button.textContent = label; }, 1500);
    // The button's aria-label ("Copy the image ARN") hides its new text from
    // a screen reader: say it in the page's polite live region instead.
    copyStatus().textContent = spoken;
  };
  const refused = () => show(
    "Copy by hand",
    `The browser did not let the page copy ${what}: select it and copy it by hand.`,
  );
  // No clipboard on a plain http:// page that is not on this machine.
  if (!navigator.clipboard) return refused();
  navigator.clipboard.writeText(button.dataset.copy).then(() => show("Copied", `Copied ${what}`), refused);
});

// A page that comes back with errors (a form posted without htmx) starts at
// its first invalid field, so that the keyboard and a screen reader are there
// too; a page with its own autofocus (New import's error summary) keeps it.
document.addEventListener("DOMContentLoaded", () => {
  if (document.querySelector("[autofocus]")) return;
  const invalid = document.querySelector('main [aria-invalid="true"]');
  if (invalid) invalid.focus();
});

// A picker's "Use" copies a task id or a file's key into the form field and
// checks it, as if the person had typed it. The task picker's also fills
// what the task tells of itself (useTask); the file picker's the format the
// file's extension names.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-fill]");
  if (!button) return;
  const input = document.querySelector(button.dataset.fill);
  setField(input, button.dataset.value);
  if (input.id === "id_vmImportTaskId") useTask(button);
  const format = document.getElementById("id_format");
  if (format && button.dataset.format && format.value !== button.dataset.format) {
    setField(format, button.dataset.format);
    format.dataset.filled = button.dataset.format;
  }
  checkPlatform();
  checkFormat();
  input.focus();
});

function setField(control, value) {
  control.value = value;
  control.dispatchEvent(new Event("change", { bubbles: true }));
}

// The platform follows the task EC2 describes; the OS version its
// description names is filled in only where it fits the platform then
// chosen. The picker's status says what was filled in, and what was not.
function useTask(button) {
  const platform = document.getElementById("id_platform");
  const osVersion = document.getElementById("id_osVersion");
  const taskPlatform = button.dataset.platform || "";
  const filled = [`VM import task ${button.dataset.value}`];
  let platformChanged = false;
  if (platform && taskPlatform && platform.value !== taskPlatform) {
    platformChanged = Boolean(platform.value);
    setField(platform, taskPlatform);
    filled.push(`platform ${taskPlatform}`);
  }
  const os = osVersion ? fillOsVersion(osVersion, button, platform?.value || "", platformChanged) : {};
  if (os.filled) filled.push(os.filled);
  const status = document.getElementById("task-filled");
  if (status) status.textContent = [`Filled in ${inWords(filled)}.`, ...(os.notes || [])].join(" ");
}

// A value an earlier "Use" filled in is that task's, so this one's replaces
// it; one the person typed is theirs and stays. A version read from a task
// whose platform EC2 does not report may be another platform's: it is left
// out when the form already names a platform.
function fillOsVersion(osVersion, button, formPlatform, platformChanged) {
  const hint = button.dataset.osVersion || "";
  const current = osVersion.value.trim();
  if (current && current !== osVersion.dataset.filled) {
    return platformChanged
      ? { notes: [`Check the OS version you typed, ${current}: the platform is now ${formPlatform}.`] }
      : {};
  }
  const fits = hint && (button.dataset.platform || !formPlatform);
  const value = fits ? hint : "";
  if (osVersion.value !== value) setField(osVersion, value);
  osVersion.dataset.filled = value;
  const notes = [];
  if (current && !value) notes.push(`The OS version ${current}, from the task used before, was taken out.`);
  if (hint && !fits) {
    notes.push(
      `The OS version ${hint} in its description was not filled in: EC2 does not say which platform the task is, so it may not be a ${formPlatform} version.`,
    );
  }
  return { filled: fits ? `OS version ${hint} (read from its description: check it)` : "", notes };
}

// "a", "a and b", "a, b and c".
function inWords(items) {
  return items.length < 2 ? items.join("") : `${items.slice(0, -1).join(", ")} and ${items.at(-1)}`;
}

// The format a bucket file's extension names: the file picker's, else the
// one its name suggests.
function fileFormat(key) {
  for (const option of document.querySelectorAll("#bucket-files option")) {
    if (option.value === key) return option.dataset.format || "";
  }
  return formatNamedBy(key);
}

// The disk format a file name's extension suggests ("" for none), by the
// server's map (aws.FORMAT_BY_EXTENSION), which New import puts on the S3
// key's field as data-formats. A guess EC2 never reads: the page says so.
// upload.js asks it too, for a file whose header says nothing it knows.
function formatNamedBy(path) {
  const field = document.getElementById("id_s3Key");
  const name = path.split("/").pop();
  const dot = name.lastIndexOf(".");
  if (!field || !field.dataset.formats || dot < 0) return "";
  return JSON.parse(field.dataset.formats)[name.slice(dot + 1).toLowerCase()] || "";
}

// A key typed or chosen from the list, with no format chosen yet: the one
// its name suggests, which the person can still change. A format the portal
// filled (data-filled) follows the key as it changes, as the task picker's
// OS version does; one the person chose is theirs and stays.
function suggestFormat() {
  const key = document.getElementById("id_s3Key");
  const format = document.getElementById("id_format");
  if (!key || !format || !formatFilled(format)) return;
  const named = fileFormat(key.value.trim());
  if (format.value !== named) setField(format, named);
  format.dataset.filled = named;
}

function formatFilled(format) {
  return !format.value || format.value === format.dataset.filled;
}

function checkFormat() {
  const warning = document.getElementById("format-warning");
  const key = document.getElementById("id_s3Key");
  const format = document.getElementById("id_format");
  if (!warning || !key || !format) return;
  const expected = fileFormat(key.value.trim());
  // Only a format the person chose can disagree with the key: one the
  // portal filled follows it (suggestFormat).
  const mismatch = expected && !formatFilled(format) && format.value !== expected;
  warning.hidden = !mismatch;
  warning.textContent = mismatch
    ? `The file's name says ${expected.toUpperCase()}, but the disk format chosen is ${format.value.toUpperCase()}. EC2 fails an import whose format does not match the file.`
    : "";
}

// The platform EC2 reported for the chosen task, from the picker's list.
function taskPlatform(taskId) {
  for (const option of document.querySelectorAll("#vm-import-tasks option")) {
    if (option.value === taskId) return option.dataset.platform || "";
  }
  return "";
}

function checkPlatform() {
  const warning = document.getElementById("platform-warning");
  const task = document.getElementById("id_vmImportTaskId");
  const platform = document.getElementById("id_platform");
  if (!warning || !task || !platform) return;
  const expected = taskPlatform(task.value.trim());
  const mismatch = expected && platform.value && platform.value !== expected;
  warning.hidden = !mismatch;
  warning.textContent = mismatch
    ? `EC2 reports VM import task ${task.value.trim()} as ${expected}, but the platform chosen is ${platform.value}. Check both before you start the import.`
    : "";
}

document.addEventListener("change", (event) => {
  // The person's own choice (setField's events are not trusted): theirs now.
  if (event.target.matches("#id_format") && event.isTrusted) delete event.target.dataset.filled;
  if (event.target.matches("#id_platform, #id_vmImportTaskId")) checkPlatform();
  if (event.target.matches("#id_s3Key")) suggestFormat();
  if (event.target.matches("#id_format, #id_s3Key")) checkFormat();
});
document.addEventListener("htmx:afterSettle", () => {
  checkPlatform();
  checkFormat();
});

// Adding or removing a tag swaps the whole tag list, and the button pressed
// with it: focus would fall to the top of the page. It goes to the new row's
// Key, or after a removal to the row that took its place (else Add a tag).
let tagsAction = null;
document.addEventListener("htmx:beforeRequest", (event) => {
  const button = event.detail.elt;
  if (button.name === "tags_action") tagsAction = button.value;
});
document.addEventListener("htmx:afterSettle", (event) => {
  const tags = document.getElementById("tags");
  if (!tagsAction || !tags || event.detail.target.id !== "tags") return;
  const keys = tags.querySelectorAll(".tag-row input[name$='-key']");
  const removed = tagsAction.match(/^remove-(\d+)$/);
  const row = removed ? Math.min(Number(removed[1]), keys.length - 1) : keys.length - 1;
  tagsAction = null;
  const next = keys[row] || tags.querySelector("button[value='add']");
  if (next) next.focus();
});

// A field's look follows its messages: when live validation swaps in a
// field's message list, the field is marked invalid exactly when it has one.
function syncValidity(list) {
  const field = list.closest(".field");
  if (!field) return;
  const invalid = list.children.length > 0;
  field.classList.toggle("invalid", invalid);
  const control = field.querySelector("input, select, textarea");
  if (control) control.setAttribute("aria-invalid", invalid ? "true" : "false");
}

document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  const id = target && target.id;
  if (id && id.startsWith("errors-")) {
    const list = document.getElementById(id);
    if (list) syncValidity(list);
  }
});

// Length limits are said as the person types, not enforced by cutting the
// text (the server still refuses anything too long).
document.addEventListener("input", (event) => {
  const control = event.target;
  const limit = Number(control.dataset && control.dataset.maxlength);
  if (!limit) return;
  const list = control.closest(".field")?.querySelector(".field-errors");
  if (!list) return;
  const length = control.value.length;
  const note = list.querySelector("[data-length-note]");
  if (length > limit) {
    const text = `${control.dataset.label} must be at most ${limit} characters; this one has ${length}.`;
    if (note) {
      note.textContent = text;
    } else {
      const item = document.createElement("li");
      item.dataset.lengthNote = "";
      item.textContent = text;
      list.prepend(item);
    }
  } else if (note) {
    note.remove();
  }
  syncValidity(list);
});

// An import's time so far keeps counting between polls: an unchanged poll
// brings nothing from the server, so the page counts on from the seconds
// its last answer gave (data-elapsed), by the browser's own clock. The
// words are those of the duration filter (imports/templatetags/portal.py).
function duration(seconds) {
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  const pad = (n) => String(n).padStart(2, "0");
  if (minutes < 60) return `${minutes}m ${pad(seconds % 60)}s`;
  return `${Math.floor(minutes / 60)}h ${pad(minutes % 60)}m`;
}

const elapsedSeenAt = new WeakMap(); // each element as swapped in: when first seen
setInterval(() => {
  for (const span of document.querySelectorAll(".elapsed[data-elapsed]")) {
    if (!elapsedSeenAt.has(span)) elapsedSeenAt.set(span, performance.now());
    const counted = Math.floor((performance.now() - elapsedSeenAt.get(span)) / 1000);
    span.textContent = `${duration(Number(span.dataset.elapsed) + counted)} so far`;
  }
}, 1000);

// Back to New import after starting an import: the browser loads the page
// again, with a new client token, and puts back what was typed, so Start
// import would make a second import of the same request. The token sent
// from this page is kept in its history entry instead and comes back with
// it: the same request again is the same import, and a changed one is told
// so and offered a new token (the server's answer to a reused token).
document.addEventListener("submit", (event) => {
  const token = event.target.id === "import-form" && event.target.elements.clientToken;
  if (token) history.replaceState({ ...history.state, clientToken: token.value }, "");
});

// A form the server answered (invalid, or a reused token answered with a new
// one): the token it carries now is the one this page would send.
document.addEventListener("htmx:afterSettle", () => {
  const form = document.getElementById("import-form");
  const sent = history.state && history.state.clientToken;
  if (sent && form && form.elements.clientToken && form.elements.clientToken.value !== sent) {
    history.replaceState({ ...history.state, clientToken: form.elements.clientToken.value }, "");
  }
});

function restoreSentToken() {
  const sent = history.state && history.state.clientToken;
  const form = document.getElementById("import-form");
  if (!sent || !form || !form.elements.clientToken) return;
  form.elements.clientToken.value = sent;
  const shown = form.querySelector("[data-client-token]");
  if (shown) shown.textContent = sent;
}
restoreSentToken();

// Back or Forward to a filtered history: htmx puts back the page as it was
// saved, but a select's choice and a field's text are not in saved HTML, so
// the filters would show what the page first loaded with while the list is
// the address's. They are set from the address (without a change event:
// the list is already that address's). Focus stays on the filter the person
// was on: htmx gives it back to the element of the same id after a restore,
// so each filter has one.
function filtersFromAddress() {
  const params = new URLSearchParams(location.search);
  for (const form of document.querySelectorAll("form.filters")) {
    for (const control of form.elements) {
      if (!control.name || control.type === "submit") continue;
      const value = params.get(control.name) || "";
      control.value = value;
      // A value the page does not offer (?status=done) is left out by the
      // list, so its select says "Any" rather than nothing.
      if (control.value !== value) control.value = "";
    }
  }
}
document.addEventListener("htmx:historyRestore", filtersFromAddress);

// An htmx request the portal refused, or could not make: said in a message
// that stays in view until a request succeeds, never a button that did
// nothing. A poll's passing failure (an outage, a restart) is left to its
// next poll; a poll refused (the import removed, its team left) stops.
(() => {
  const isPoll = (elt) => /\bevery\b/.test(elt.getAttribute("hx-trigger") || "");

  // In view wherever the page is scrolled (portal.css); an alert, which a
  // screen reader reads as it appears.
  function say(message) {
    const region = liveRegion("request-problem", "message message-error request-problem", "alert");
    region.hidden = false; // shown before its text changes, so that it is announced
    region.textContent = message;
  }

  function refusal(xhr) {
    const type = xhr.getResponseHeader("Content-Type") || "";
    if (xhr.status === 400 && type.startsWith("text/plain") && xhr.responseText.trim()) {
      return xhr.responseText.trim();
    }
    if (xhr.status === 403) {
      return "The portal refused this (403): the page is out of date, or your role in the team changed. Reload the page.";
    }
    if (xhr.status === 404) {
      return "This is no longer there (404): it was removed, or you are no longer in its team. Reload the page.";
    }
    return `The portal could not do this just now (it answered ${xhr.status}). Try again in a moment.`;
  }

  document.addEventListener("htmx:responseError", (event) => {
    const { elt, xhr } = event.detail;
    if (isPoll(elt)) {
      if (xhr.status !== 403 && xhr.status !== 404) return;
      elt.dataset.pollStopped = "true";
    }
    say(refusal(xhr));
  });
  document.addEventListener("htmx:sendError", (event) => {
    if (isPoll(event.detail.elt)) return;
    say("The portal could not be reached: check the network connection, then try again.");
  });
  document.addEventListener("htmx:beforeRequest", (event) => {
    if (event.detail.elt.dataset.pollStopped) event.preventDefault();
  });
  document.addEventListener("htmx:afterRequest", (event) => {
    const region = document.getElementById("request-problem");
    if (region && event.detail.successful && !isPoll(event.detail.elt)) region.hidden = true;
  });
})();

// A poll swaps in the history's running rows and the import's status panel
// whole, and the control a keyboard user was on goes with them: focus would
// fall to the page's start every few seconds. It comes back to the control
// in the same place of the new row or panel, unless the person moved on.
(() => {
  const BOXES = "tr[id^='import-'], #status";
  const CONTROLS = "a[href], button, input, select, textarea, [tabindex]";
  let kept = null;

  document.addEventListener("htmx:beforeSwap", () => {
    const active = document.activeElement;
    const box = active && active.closest(BOXES);
    kept = box ? { box: box.id, at: [...box.querySelectorAll(CONTROLS)].indexOf(active) } : null;
  });
  document.addEventListener("htmx:afterSettle", () => {
    if (!kept) return;
    const { box, at } = kept;
    kept = null;
    if (document.activeElement && document.activeElement !== document.body) return;
    const control = document.getElementById(box)?.querySelectorAll(CONTROLS)[at];
    if (control) control.focus({ preventScroll: true });
  });
})();
