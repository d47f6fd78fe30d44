// Browser notifications: while an import's page or the history is open in a
// background tab, tell the person when an import ends (with their permission),
// and keep the status in the page title. Reads the status badges htmx swaps
// in; every page works without it.
(() => {
  const ENDED = ["available", "failed"];
  const DETAIL = /^\/imports\/(\d+)$/;
  const baseTitle = document.title;
  const seen = new Map(); // import id -> last status shown
  let offer = null; // the Notify me button, while it is offered

  const statusOf = (badge) => (badge.className.match(/\bstatus-(\w+)/) || [])[1];

  function imports() {
    const found = [];
    const detail = location.pathname.match(DETAIL);
    const badge = document.querySelector("#status .status");
    if (detail && badge) {
      const error = document.querySelector("#status .error-box p");
      found.push({
        id: detail[1],
        status: statusOf(badge),
        label: badge.textContent.trim(),
        name: (document.querySelector("h1") || {}).textContent || "Import",
        detail: error ? error.textContent.trim() : "",
      });
    }
    document.querySelectorAll("tr[id^='import-']").forEach((row) => {
      const rowBadge = row.querySelector(".status");
      if (!rowBadge) return;
      found.push({
        id: row.id.slice("import-".length),
        status: statusOf(rowBadge),
        label: rowBadge.textContent.trim(),
        name: (row.querySelector("a") || {}).textContent || "Import",
        detail: "",
      });
    });
    return found;
  }

  function tell(item) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (!document.hidden) return; // the page in front already shows it
    const notification = new Notification(`${item.name.trim()}: ${item.label}`, {
      body: item.detail || `Import #${item.id} is ${item.label.toLowerCase()}.`,
      tag: `import-${item.id}`,
    });
    notification.onclick = () => {
      window.focus();
      location.href = `/imports/${item.id}`;
    };
  }

  function update(announce) {
    const found = imports();
    found.forEach((item) => {
      const before = seen.get(item.id);
      if (announce && before && !ENDED.includes(before) && ENDED.includes(item.status)) tell(item);
      seen.set(item.id, item.status);
    });
    // The offer and the title's count follow what the page shows now: the
    // offer goes once nothing shown is running, and comes back with running
    // rows (a filter cleared, a page of running imports shown again).
    const running = found.filter((item) => !ENDED.includes(item.status)).length;
    if (offer && !running) {
      offer.remove();
      offer = null;
    } else if (!offer && running) {
      offerPermission();
    }
    if (DETAIL.test(location.pathname) && found.length) {
      document.title = `${found[0].label} · ${baseTitle}`;
    } else {
      document.title = running ? `(${running} running) ${baseTitle}` : baseTitle;
    }
    return found;
  }

  function offerPermission() {
    if (!("Notification" in window) || Notification.permission !== "default") return;
    const head = document.querySelector(".page-head");
    if (!head) return;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small";
    button.textContent = "Notify me";
    button.title = "Let the browser tell you when an import ends while this tab is in the background";
    button.addEventListener("click", () => {
      Notification.requestPermission().then(() => {
        button.remove();
        offer = null;
      });
    });
    head.appendChild(button);
    offer = button;
  }

  update(false);
  // htmx swaps the status panel and the history's rows (out of band too);
  // watching the DOM catches every kind of swap.
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    // Not requestAnimationFrame: background tabs never run it.
    setTimeout(() => {
      pending = false;
      update(true);
    }, 0);
  }).observe(document.querySelector("main") || document.body, { childList: true, subtree: true });
})();
