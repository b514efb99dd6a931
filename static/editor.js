// The new and edit pages: a live preview with the tagger's suggested labels, and on the new page a template button.
// The server renders and sanitises the preview (POST /api/preview); this script only places what it returns.
(function () {
  const form = document.querySelector("form[data-editor]");
  if (!form) return;
  const source = form.querySelector("[data-preview-source]");
  const preview = document.getElementById("preview");
  const tags = document.getElementById("suggested-tags");
  const status = document.getElementById("preview-status");
  const token = document.querySelector("meta[name=csrf-token]").content;
  const previewUrl = form.dataset.previewUrl || "/api/preview";
  let timer = null;
  let latest = 0;

  function setStatus(text, busy, isError) {
    status.textContent = text;
    status.setAttribute("aria-busy", busy ? "true" : "false");
    status.classList.toggle("error", Boolean(isError));
  }

  function chip(item) {
    const wrap = document.createElement("span");
    wrap.className = "chip-wrap";
    const el = document.createElement("span");
    el.className = `chip ${item.kind} ${item.source}`;
    el.dataset.label = item.label;
    el.dataset.source = item.source;
    el.tabIndex = 0;
    el.textContent = item.label;
    const mark = document.createElement("span");
    mark.className = "mark";
    mark.setAttribute("aria-hidden", "true");
    mark.textContent = item.source === "human" ? "✓" : "◌";
    el.append(mark);
    const pop = document.createElement("span");
    pop.className = "chip-evidence";
    pop.setAttribute("role", "tooltip");
    pop.id = `ev-preview-${item.label}`;
    el.setAttribute("aria-describedby", pop.id);
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = item.source === "human"
      ? `${item.kind || "label"} · given in your front matter`
      : `${item.kind} · suggested by the tagger (${item.method}) · score ${item.score.toFixed(2)}`;
    pop.append(who);
    for (const sentence of (item.evidence || []).slice(0, 2)) {
      const quote = document.createElement("span");
      quote.className = "quote";
      quote.textContent = `“${sentence}”`;
      pop.append(quote);
    }
    wrap.append(el, pop);
    return wrap;
  }

  function show(data) {
    preview.innerHTML = data.html || '<p class="empty">Nothing to preview yet.</p>';
    if (data.title) {
      const heading = document.createElement("h1");
      heading.textContent = data.title;
      preview.prepend(heading);
    }
    const items = data.labels.concat(data.suggestions);
    tags.replaceChildren(...items.map(chip));
    const count = data.suggestions.length;
    let text = count ? `The tagger suggests ${count} label${count === 1 ? "" : "s"}. Hover over or focus one to see why.`
      : "The tagger found no label yet: name the root cause and contributing factors plainly.";
    if (data.warnings.length) text += ` Note: ${data.warnings.join("; ")}`;
    setStatus(text, false, false);
  }

  async function refresh() {
    const markdown = source.value;
    if (!markdown.trim()) {
      tags.replaceChildren();
      preview.innerHTML = '<p class="empty">Nothing to preview yet.</p>';
      setStatus("Start writing and the tagger suggests labels here.", false, false);
      return;
    }
    const request = ++latest;
    setStatus("Suggesting tags…", true, false);
    try {
      const response = await fetch(previewUrl, {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify({ markdown }),
      });
      const data = await response.json().catch(() => ({}));
      if (request !== latest) return; // a newer edit is on its way
      if (!response.ok) {
        const reason = data.error || `the server answered ${response.status}`;
        setStatus(response.status === 401 || response.status === 403
          ? "Your session expired: sign in again in another tab, then keep typing. Nothing you wrote is lost."
          : `This cannot be saved as it is: ${reason}`, false, true);
        return;
      }
      show(data);
    } catch (error) {
      if (request !== latest) return;
      setStatus("The preview is unavailable (the server did not answer). You can still save.", false, true);
    }
  }

  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  }

  form.querySelector("[data-template]")?.addEventListener("click", () => {
    const template = document.getElementById("postmortem-template").content.textContent;
    if (!source.value.trim()) {
      source.value = template;
    } else {
      // Keep what is written: insert at the cursor.
      const at = source.selectionStart ?? source.value.length;
      source.setRangeText(`\n${template}`, at, source.selectionEnd ?? at, "end");
    }
    source.focus();
    refresh();
  });
  source.addEventListener("input", schedule);
  if (source.value.trim()) refresh();
})();
