// New import's sources, and a disk file's upload straight to S3 with Uppy's
// @uppy/aws-s3 (multipart, presigned by the portal's Companion-style routes
// under the import). Without JavaScript the form still works for the other
// two sources; an upload needs this script.
(() => {
  "use strict";

  // -- the form follows the chosen source --------------------------------

  function chosenSource(form) {
    const checked = form.querySelector('input[name="source"]:checked');
    return checked ? checked.value : "vm_import_task";
  }

  function showSource(form) {
    const source = chosenSource(form);
    for (const part of form.querySelectorAll("[data-source-for]")) {
      part.hidden = !part.dataset.sourceFor.split(" ").includes(source);
    }
  }

  document.addEventListener("change", (event) => {
    if (event.target.matches('#import-form input[name="source"]')) showSource(event.target.form);
  });
  document.addEventListener("htmx:afterSettle", () => {
    const form = document.getElementById("import-form");
    if (form) showSource(form);
  });

  // -- the disk format, from the file's header where it can be read ------

  const text = (bytes, at, length) => String.fromCharCode(...bytes.subarray(at, at + length));

  async function detectFormat(file) {
    const head = new Uint8Array(await file.slice(0, 1024).arrayBuffer());
    if (text(head, 0, 4) === "KDMV" || text(head, 0, 21) === "# Disk DescriptorFile") return "vmdk";
    if (text(head, 0, 8) === "vhdxfile") return "vhdx";
    if (text(head, 257, 5) === "ustar") {
      const name = text(head, 0, 100).replace(/\0.*$/s, "");
      return name.toLowerCase().endsWith(".ovf") ? "ova" : "";
    }
    if (file.size >= 512) {
      const tail = new Uint8Array(await file.slice(file.size - 512).arrayBuffer());
      if (text(tail, 0, 8) === "conectix") return "vhd";
    }
    if (text(head, 512, 8) === "EFI PART") return "raw";
    if (head[510] === 0x55 && head[511] === 0xaa) return "raw";
    return "";
  }

  document.addEventListener("change", async (event) => {
    if (!event.target.matches("#disk-file")) return;
    const file = event.target.files[0];
    const said = document.getElementById("disk-file-detected");
    setErrors("diskFile", []);
    if (!file) { said.textContent = ""; return; }
    const format = await detectFormat(file);
    const select = document.getElementById("id_format");
    if (format) {
      fillFormat(select, format);
      said.textContent = `Detected from the file's header: ${format.toUpperCase()}. Change Disk format below if that is wrong.`;
    } else {
      said.textContent = formatFromName(file.name, select);
    }
  });

  // Filled by the page (data-filled, as portal.js's suggestFormat marks it):
  // the next file's format may replace it; one the person chose stays theirs.
  // Through a change event, so that the field's "required" message goes too.
  function fillFormat(select, format) {
    if (select.value !== format) setField(select, format);
    select.dataset.filled = format;
  }

  // A header the page cannot read: the format the file's name suggests
  // (portal.js's formatNamedBy, as for a key in the bucket), filled in unless
  // the person chose one, and said to be only a guess from the name.
  function formatFromName(name, select) {
    const unread = "The format could not be read from the file's header";
    const named = formatNamedBy(name);
    if (!named) return `${unread}: choose Disk format below.`;
    if (formatFilled(select)) fillFormat(select, named);
    const suggests = `${unread}. The file's name suggests ${named.toUpperCase()}`;
    return select.value === named
      ? `${suggests}: Disk format below is set to that; check it.`
      : `${suggests}, but Disk format below is ${select.value.toUpperCase()}: check which is right.`;
  }

  // -- messages ----------------------------------------------------------

  function setErrors(name, messages) {
    const list = document.getElementById(`errors-${name}`);
    if (!list) return;
    list.replaceChildren(...messages.map((message) => {
      const item = document.createElement("li");
      item.textContent = message;
      return item;
    }));
    const field = list.closest(".field");
    if (field) field.classList.toggle("invalid", messages.length > 0);
  }

  // The token base.html gives htmx (every page has it, forms or not).
  function csrfToken() {
    return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["x-csrftoken"] || "";
  }

  // The file name as the portal keeps it in the key (forms.safe_file_name).
  function safeFileName(name) {
    const base = name.replace(/\\/g, "/").split("/").pop().normalize("NFKD").replace(/[^\x00-\x7f]/g, "");
    return base.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[.-]+|[.-]+$/g, "").slice(0, 200) || "disk";
  }

  // The file's SHA-256 of its first and last MiB (the whole of a smaller
  // file), kept with the import: a resume must choose the same file, and two
  // disk images of the same name and size differ there (partition tables,
  // descriptors, footers). "" where the browser has no Web Crypto (a plain
  // http:// page not on loopback, localhost or 127.0.0.1): the check is then
  // left out. null where the file cannot be read: moved, changed or removed
  // on disk since it was chosen.
  const FINGERPRINT_SPAN = 1024 * 1024;

  async function fingerprint(file) {
    if (!window.crypto || !crypto.subtle) return "";
    const parts = file.size > 2 * FINGERPRINT_SPAN
      ? [file.slice(0, FINGERPRINT_SPAN), file.slice(file.size - FINGERPRINT_SPAN)]
      : [file];
    let bytes;
    try {
      bytes = await new Blob(parts).arrayBuffer();
    } catch {
      return null;
    }
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // The units of errors.byte_size, but always one decimal: a live counter
  // whose width jumped as it grew would be hard to read.
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  function bytes(n) {
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
  }
  // A size as the pages and messages say it (errors.byte_size): 40 MiB.
  function byteSize(n) {
    if (n < 1024) return `${n} bytes`;
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(1).replace(/\.0$/, "")} ${units[i]}`;
  }
  const unreadable = (file) =>
    `${file.name} could not be read: it was moved, changed or removed since it was chosen. ` +
    "Choose it again. Nothing was sent.";

  // Two sizes told apart: in bytes too where their rounding is the same.
  function sizes(a, b) {
    return byteSize(a) === byteSize(b)
      ? [`${byteSize(a)}, ${a} bytes`, `${byteSize(b)}, ${b} bytes`]
      : [byteSize(a), byteSize(b)];
  }
  function duration(seconds) {
    if (!Number.isFinite(seconds)) return "—";
    seconds = Math.round(seconds);
    if (seconds < 60) return `${seconds} s`;
    const minutes = Math.floor(seconds / 60);
    if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
    return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
  }

  // -- the portal's JSON endpoints ----------------------------------------

  // A refusal by the portal, in its own words: its endpoints answer
  // {"error": "...", "code": "..."} (imports/upload_views.py), which Uppy's
  // Companion client would hide behind "Could not POST /imports/1/s3/...".
  class PortalError extends Error {
    constructor(step, message, status, code) {
      super(message);
      this.name = "PortalError";
      this.step = step;
      this.status = status;
      this.code = code || "";
    }
  }

  // The page's address is the import's already (replaceState): a reload
  // signs in and opens it, with its field to resume from.
  const SESSION_ENDED =
    "Your session has ended: reload the page to sign in again, then choose the same file to send the rest (the parts already sent are kept).";

  // The JSON answer of one of the upload's endpoints, or a PortalError that
  // says which step failed and why.
  async function portalJson(step, url, { method = "GET", headers, body, signal } = {}) {
    let response;
    try {
      response = await fetch(url, { method, headers, body, signal, credentials: "same-origin" });
    } catch (error) {
      if (error.name === "AbortError") throw error;
      throw new PortalError(step, "The portal could not be reached: check the network connection.", 0);
    }
    const answer = await response.json().catch(() => null);
    if (response.redirected && answer === null) {
      // fetch followed login_required's redirect: the sign-in page, not an answer.
      throw new PortalError(step, SESSION_ENDED, 401);
    }
    if (!response.ok || answer === null) {
      const said = answer && typeof answer.error === "string" && answer.error
        ? answer.error
        : `The portal answered ${response.status} ${response.statusText}`.trim();
      throw new PortalError(step, said, response.status, answer && answer.code);
    }
    return answer;
  }

  const sentence = (message) => (/[.!?…]$/.test(message) ? message : `${message}.`);

  // What the panel says when the upload stops.
  function stoppedMessage(error) {
    if (error instanceof PortalError) {
      const said = error.message.replace(/\.$/, "");
      const code = error.code && !said.includes(error.code) ? ` (${error.code})` : "";
      return `${error.step} ${sentence(said + code)}`;
    }
    return `The upload stopped: ${sentence(error.message || String(error))}`;
  }

  // -- the parts' URLs, signed in batches ahead of their PUTs -------------

  // Parts in flight at once: Uppy's `limit` (bench/upload.py reads it here).
  const PARALLEL_PARTS = 4;
  // Uppy asks for each part's URL just before its PUT. Asking the portal then
  // put a round trip to Django in front of every part; instead the page asks
  // for SIGN_BATCH parts at a time (the portal allows up to 100), and for the
  // next batch while SIGN_AHEAD parts are still ready, so a PUT never waits.
  const SIGN_BATCH = 20;
  const SIGN_AHEAD = 10;
  // A URL is signed for `expires` seconds (an hour); one with less than ten
  // minutes left (a paused or slow upload) is signed again, not used.
  const RESIGN_MARGIN_MS = 10 * 60 * 1000;

  class SignedParts {
    constructor(endpoint, partCount, headers) {
      this.endpoint = endpoint;
      this.partCount = partCount;
      this.headers = headers;
      this.uploadId = null;
    }

    // Uppy's signPart option: {url, method, expires} for one part, from the
    // batch that signed it.
    async signPart(_file, { uploadId, key, partNumber, signal }) {
      if (uploadId !== this.uploadId) this.forget(uploadId);
      for (let round = 0; round < 3; round += 1) {
        const part = this.freshPart(partNumber);
        if (part) {
          this.ready.delete(partNumber); // one PUT a URL: a retry signs the part again
          this.signAhead(key, partNumber);
          // Uppy uses `expires` only as the PUT's timeout; S3 checks a URL's
          // expiry when the PUT starts, so the lifetime is the right bound.
          return { url: part.url, method: "PUT", expires: part.expires };
        }
        if (!this.pending.has(partNumber)) this.sign(key, partNumber);
        const batch = this.pending.get(partNumber);
        if (!batch) break; // past the last part: nothing to sign
        await untilAborted(batch, signal);
      }
      throw new Error(`The portal gave no usable URL for part ${partNumber}.`);
    }

    // A part's signed URL while it is still good to start a PUT with.
    freshPart(number) {
      const part = this.ready.get(number);
      return part && Date.now() < part.staleAt ? part : null;
    }

    forget(uploadId) {
      this.uploadId = uploadId;
      this.ready = new Map(); // part number -> {url, expires, staleAt}
      this.pending = new Map(); // part number -> the batch request signing it
      this.highest = 0; // the highest part number asked for so far
    }

    // The next batch, once fewer than SIGN_AHEAD parts past this one are asked for.
    signAhead(key, partNumber) {
      if (this.highest < this.partCount && this.highest - partNumber < SIGN_AHEAD) {
        this.sign(key, this.highest + 1);
      }
    }

    // One request for the parts from `first` on (SIGN_BATCH of them at most)
    // that have no fresh URL and are not being signed already.
    sign(key, first) {
      const numbers = [];
      const last = Math.min(first + SIGN_BATCH - 1, this.partCount);
      for (let number = first; number <= last; number += 1) {
        if (!this.pending.has(number) && !this.freshPart(number)) numbers.push(number);
      }
      this.highest = Math.max(this.highest, last);
      if (!numbers.length) return;
      const query = new URLSearchParams({ key, partNumbers: numbers.join(",") });
      const url = `${this.endpoint}s3/multipart/${encodeURIComponent(this.uploadId)}/batch?${query}`;
      const asked = Date.now();
      const uploadId = this.uploadId;
      const batch = (async () => {
        const answer = await portalJson("The portal could not sign the parts' URLs:", url, { headers: this.headers });
        if (uploadId !== this.uploadId) return;
        const lifetime = answer.expires * 1000;
        const staleAt = asked + lifetime - Math.min(RESIGN_MARGIN_MS, lifetime / 2);
        for (const [number, signed] of Object.entries(answer.presignedUrls)) {
          this.ready.set(Number(number), { url: signed, expires: answer.expires, staleAt });
        }
      })();
      const settled = () => {
        for (const number of numbers) {
          if (this.pending.get(number) === batch) this.pending.delete(number);
        }
      };
      batch.then(settled, settled); // a failed batch is asked again by the part that needs it
      for (const number of numbers) this.pending.set(number, batch);
    }
  }

  // The promise, or a rejection as soon as Uppy aborts the part (pause, cancel).
  function untilAborted(promise, signal) {
    if (!signal) return promise;
    return new Promise((resolve, reject) => {
      const aborted = () => reject(signal.reason || new DOMException("Aborted", "AbortError"));
      if (signal.aborted) { aborted(); return; }
      signal.addEventListener("abort", aborted, { once: true });
      promise.then(resolve, reject).finally(() => signal.removeEventListener("abort", aborted));
    });
  }

  // -- the upload --------------------------------------------------------

  // The panel comes after the whole form, disabled now: it is scrolled into
  // view, top first (its lines keep their room before their words arrive,
  // portal.css, so it does not grow past the window after), and its heading
  // takes the focus, so that the keyboard and a screen reader are there too.
  // Smoothly, unless the person asked their system for less motion.
  function bringIntoView(panel) {
    const still = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
    panel.scrollIntoView({ block: "start", behavior: still ? "auto" : "smooth" });
    panel.querySelector("#upload-title").focus({ preventScroll: true });
  }

  // `upload` is the portal's plan: {endpoint, partSize, partCount, ...}; `resume`
  // is {uploadId, key} when the upload already exists (a reload).
  function startUpload(file, upload, detailUrl, resume) {
    const panel = document.getElementById("upload-panel");
    const bar = panel.querySelector("progress");
    const figures = panel.querySelector("[data-upload-figures]");
    const state = panel.querySelector("[data-upload-state]");
    const pause = panel.querySelector("[data-upload-pause]");
    const retry = panel.querySelector("[data-upload-retry]");
    const cancel = panel.querySelector("[data-upload-cancel]");
    const headers = { "X-CSRFToken": csrfToken() };
    panel.querySelector("[data-upload-name]").textContent = file.name;
    panel.hidden = false;
    bringIntoView(panel);

    const uppy = new Uppy.Uppy({ autoProceed: false, allowMultipleUploadBatches: false });
    const signed = new SignedParts(upload.endpoint, upload.partCount, headers);
    const uploadUrl = (uploadId, key, tail = "") =>
      `${upload.endpoint}s3/multipart/${encodeURIComponent(uploadId)}${tail}?${new URLSearchParams({ key })}`;
    const jsonHeaders = { ...headers, "Content-Type": "application/json" };
    // Set by Cancel upload: Uppy also "aborts" after an error, but then the
    // parts are kept (and the import) so that Try again sends only the rest.
    let cancelling = false;
    // The upload S3 holds the parts of: {uploadId, key}. After an error Uppy
    // forgets it (its "abort"), and Try again would then start over and send
    // every part again; given back, Uppy lists the parts S3 already holds
    // (listParts) and sends only the others.
    let started = resume;
    uppy.use(Uppy.AwsS3, {
      endpoint: upload.endpoint,
      headers,
      shouldUseMultipart: true,
      getChunkSize: () => upload.partSize,
      limit: PARALLEL_PARTS,
      // The portal's routes, called here rather than by Uppy's Companion
      // client so that a refusal shows the portal's own message.
      createMultipartUpload: async (uppyFile, signal) => {
        const answer = await portalJson(
          "The upload could not start:", `${upload.endpoint}s3/multipart`,
          {
            method: "POST",
            headers: jsonHeaders,
            body: JSON.stringify({ filename: uppyFile.name, type: uppyFile.type }),
            signal,
          },
        );
        started = { uploadId: answer.uploadId, key: answer.key };
        return answer;
      },
      listParts: (_file, { uploadId, key, signal }) => portalJson(
        "The parts already in S3 could not be listed:", uploadUrl(uploadId, key), { headers, signal },
      ),
      signPart: (uppyFile, options) => signed.signPart(uppyFile, options),
      completeMultipartUpload: (_file, { uploadId, key, parts, signal }) => portalJson(
        "Every part was sent, but the upload could not be completed:", uploadUrl(uploadId, key, "/complete"),
        {
          method: "POST",
          headers: jsonHeaders,
          body: JSON.stringify({ parts: parts.map(({ PartNumber, ETag }) => ({ PartNumber, ETag })) }),
          signal,
        },
      ),
      // Cancel ends the import too (the portal answers with its outcome):
      // wait for that answer before leaving for the import's page.
      abortMultipartUpload: async (_file, { uploadId, key }) => {
        if (!cancelling) return;
        await fetch(uploadUrl(uploadId, key), { method: "DELETE", headers, credentials: "same-origin" });
        window.location.replace(detailUrl);
      },
    });
    const id = uppy.addFile({ name: file.name, type: file.type || "application/octet-stream", data: file, source: "portal" });
    if (resume) uppy.setFileState(id, { s3Multipart: resume });

    // Speed over the last few seconds, not since the start: a pause or a
    // dropped network would otherwise drag it down for the rest of the upload.
    const samples = [];
    uppy.on("upload-progress", (_file, progress) => {
      const now = performance.now();
      samples.push([now, progress.bytesUploaded]);
      while (samples.length > 2 && now - samples[0][0] > 5000) samples.shift();
      const [then, before] = samples[0];
      const speed = now > then ? ((progress.bytesUploaded - before) * 1000) / (now - then) : 0;
      const left = progress.bytesTotal - progress.bytesUploaded;
      bar.value = progress.bytesTotal ? (100 * progress.bytesUploaded) / progress.bytesTotal : 0;
      figures.textContent = `${bytes(progress.bytesUploaded)} of ${bytes(progress.bytesTotal)}`
        + ` · ${bytes(speed)}/s · ${speed > 0 ? duration(left / speed) : "—"} left`;
    });
    uppy.on("s3-multipart:part-uploaded", () => {
      if (!uppy.getFile(id).isPaused) state.textContent = navigator.onLine ? "Uploading…" : state.textContent;
    });
    uppy.on("upload-success", () => {
      state.textContent = "Uploaded. The import starts now; opening its page…";
      pause.disabled = true;
      cancel.disabled = true;
      // replace: this entry is the import's address already (replaceState),
      // so Back leads where the person was before New import.
      window.location.replace(detailUrl);
    });
    uppy.on("upload-error", (_file, error) => {
      if (error.code === "already_complete") {
        // S3 holds the whole file (its answer to an earlier try was lost): the
        // import is queued, and its page follows it from here.
        window.location.replace(detailUrl);
        return;
      }
      const sessionEnded = error instanceof PortalError && error.status === 401; // says it all
      const kept = sessionEnded ? ""
        : resume || uppy.getFile(id).progress.bytesUploaded > 0
          ? "The parts already sent are kept: try again to send the rest."
          : "Nothing has been sent yet, and the import waits for its file: try again once this is fixed.";
      state.textContent = `${stoppedMessage(error)} ${kept}`.trim();
      const onPause = document.activeElement === pause;
      retry.hidden = false;
      pause.hidden = true;
      if (onPause) retry.focus(); // the button a keyboard user was on is gone
    });
    // Said only of an upload under way: a paused one stays paused, and a
    // stopped one keeps the reason it stopped.
    const underWay = () => retry.hidden && !uppy.getFile(id)?.isPaused && !cancelling;
    window.addEventListener("offline", () => {
      if (underWay()) state.textContent = "The network is gone. The upload goes on by itself when it is back.";
    });
    window.addEventListener("online", () => {
      if (underWay()) state.textContent = "Back online: uploading…";
    });

    pause.onclick = () => {
      const paused = uppy.pauseResume(id);
      pause.textContent = paused ? "Resume" : "Pause";
      state.textContent = paused ? "Paused. The parts already sent are kept." : "Uploading…";
    };
    retry.onclick = () => {
      retry.hidden = true;
      pause.hidden = false;
      pause.focus(); // Try again, which had the focus, hides
      state.textContent = "Uploading…";
      if (started) uppy.setFileState(id, { s3Multipart: started });
      uppy.retryUpload(id);
    };
    cancel.onclick = async () => {
      if (!window.confirm("Cancel this upload? Its parts are deleted and the import is cancelled.")) return;
      state.textContent = "Cancelling…";
      cancelling = true;
      pause.disabled = true;
      cancel.disabled = true;
      if (!retry.hidden) {
        // Stopped by an error: Uppy has let go of the upload and would not
        // abort it, so the portal is asked here. With no upload begun, the
        // import's own Cancel page ends it.
        await cancelStopped();
        return;
      }
      uppy.removeFile(id);
    };
    async function cancelStopped() {
      if (!started) {
        window.location.assign(`${detailUrl}/cancel`);
        return;
      }
      try {
        const answer = await fetch(uploadUrl(started.uploadId, started.key), {
          method: "DELETE", headers, credentials: "same-origin",
        });
        if (answer.ok) {
          window.location.replace(detailUrl);
          return;
        }
      } catch {
        // said below
      }
      state.textContent = "The upload could not be cancelled: the portal did not answer. Try again.";
      cancelling = false;
      cancel.disabled = false;
    }
    // Leaving the page mid-upload loses nothing, but say so before it happens.
    window.addEventListener("beforeunload", (event) => {
      const current = uppy.getFile(id);
      if (current && !current.progress.uploadComplete && !cancel.disabled) event.preventDefault();
    });

    state.textContent = "Uploading…";
    uppy.upload();
    return uppy;
  }

  // New import: record the import first (JSON), then send the file. One
  // press at a time: a second while the first reads the file and records the
  // import would start a second uploader sending every part again.
  let recording = false;
  document.addEventListener("submit", async (event) => {
    const form = event.target;
    if (form.id !== "import-form" || chosenSource(form) !== "upload") return;
    if (event.submitter && event.submitter.name === "tags_action") return;
    // Before htmx's listener on the form: this submit is the script's.
    event.preventDefault();
    event.stopPropagation();
    if (recording) return;
    recording = true;
    try {
      await recordAndUpload(form);
    } finally {
      recording = false;
    }
  }, true);

  async function recordAndUpload(form) {
    const input = document.getElementById("disk-file");
    const file = input.files[0];
    if (!file) {
      setErrors("diskFile", ["Choose the disk image file to upload."]);
      input.focus();
      return;
    }
    const print = await fingerprint(file);
    if (print === null) {
      setErrors("diskFile", [unreadable(file)]);
      input.focus();
      return;
    }
    const data = new FormData(form);
    data.set("fileName", file.name);
    data.set("fileSize", String(file.size));
    data.set("fileFingerprint", print);
    let response;
    try {
      response = await fetch(form.action, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        // HX-Request: an invalid form comes back as the form partial, as htmx gets it.
        headers: { Accept: "application/json", "HX-Request": "true", "X-CSRFToken": csrfToken() },
      });
    } catch {
      setErrors("diskFile", [
        "The portal could not be reached: check the network connection. Nothing was recorded or uploaded; try again.",
      ]);
      return;
    }
    const signIn = response.headers.get("HX-Redirect");
    if (signIn) {
      // The session has ended (error_pages.SignInAgainForHtmx): nothing was recorded.
      window.location.assign(signIn);
      return;
    }
    const type = response.headers.get("Content-Type") || "";
    if (type.startsWith("application/json") && response.ok) {
      const answer = await response.json();
      for (const control of form.elements) control.disabled = true;
      // The import is recorded: from now on the address is its page, so a
      // reload (or Forward after Back) finds it there, with its resume field,
      // rather than an empty New import.
      window.history.replaceState(window.history.state, "", answer.detailUrl);
      startUpload(file, answer.upload, answer.detailUrl, null);
      return;
    }
    if (type.startsWith("text/html") && response.ok) {
      // The form again, with its errors; the chosen file stays chosen.
      htmx.swap(form, await response.text(), { swapStyle: "outerHTML" });
      const fresh = document.getElementById("disk-file");
      if (fresh && fresh !== input) fresh.replaceWith(input);
      const summary = document.querySelector("#import-form .error-summary");
      if (summary) summary.focus();
      return;
    }
    setErrors("diskFile", [
      response.status === 403
        ? "The portal refused this (403): the page is out of date. Reload it, then start again; nothing was uploaded."
        : `The portal answered ${response.status}; nothing was uploaded. Try again.`,
    ]);
  }

  // An uploading import's page: choose the same file again to resume.
  document.addEventListener("change", async (event) => {
    if (!event.target.matches("#resume-file")) return;
    const input = event.target;
    const file = input.files[0];
    const expected = input.dataset;
    setErrors("resumeFile", []);
    if (!file) return;
    // Said under the field, and the choice undone: a browser fires no change
    // for the same file chosen again, which is what most of these ask for.
    const refuse = (message) => {
      setErrors("resumeFile", [message]);
      input.value = "";
    };
    if (safeFileName(file.name) !== expected.fileName || String(file.size) !== expected.fileSize) {
      const [chosen, uploading] = sizes(file.size, Number(expected.fileSize));
      refuse(`This is ${file.name} (${chosen}); the upload is of ${expected.fileName} (${uploading}). Choose that file.`);
      return;
    }
    const found = await fingerprint(file);
    if (found === null) {
      refuse(unreadable(file));
      return;
    }
    if (expected.fileFingerprint && found && found !== expected.fileFingerprint) {
      refuse(
        `This ${file.name} has the size of the file being uploaded, but not its content: ` +
          "choose the file whose upload was started. Nothing was sent.",
      );
      return;
    }
    const upload = {
      endpoint: expected.endpoint,
      partSize: Number(expected.partSize),
      partCount: Number(expected.partCount),
    };
    // Asked again, the portal answers with the same upload: Uppy then lists
    // the parts S3 already holds and sends only the others.
    let response;
    try {
      response = await fetch(expected.createUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ filename: file.name, type: file.type || "application/octet-stream" }),
      });
    } catch {
      refuse("The portal could not be reached: check the network connection, then choose the file again.");
      return;
    }
    const answer = await response.json().catch(() => ({}));
    if (response.redirected && !answer.uploadId) {
      refuse("Your session has ended: sign in again in another tab, then choose the file again here.");
      return;
    }
    if (!response.ok || !answer.uploadId) {
      refuse(answer.error || `The portal answered ${response.status}; choose the file again to retry.`);
      return;
    }
    input.disabled = true;
    startUpload(file, upload, expected.detailUrl, { uploadId: answer.uploadId, key: answer.key });
  });

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("import-form");
    if (form) showSource(form);
  });
})();
