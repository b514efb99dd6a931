// The new and edit pages: a live preview with the tagger's suggested labels, and on the new page a template button.
// The server renders and sanitises the preview (POST /api/preview); this script only places what it returns.

// Return markdown with label added to the front matter list key ("facets" or "categories"): the list is
// extended in the style it is written in (flow [a, b], a block of "- a" lines, or one bare label), the key is
// added when missing, and front matter is added when there is none. Returns null for a shape it does not
// know, rather than risk breaking the YAML.
function withLabel(markdown, key, label) {
  const text = markdown.replace(/\r\n/g, "\n");
  const front = /^---[ \t]*\n(?:([\s\S]*?)\n)?---[ \t]*(?:\n|$)/.exec(text);
  if (!front) return `---\n${key}: [${label}]\n---\n${text}`;
  const lines = front[1] ? front[1].split("\n") : [];
  const at = lines.findIndex((line) => line.startsWith(`${key}:`));
  if (at === -1) {
    lines.push(`${key}: [${label}]`);
  } else {
    const [value, comment = ""] = lines[at].slice(key.length + 1).split(/\s+(?=#)/);
    const rest = value.trim();
    const flow = /^\[(.*)\]$/.exec(rest);
    if (flow) {
      const items = flow[1].split(",").map((item) => item.trim()).filter(Boolean);
      if (items.includes(label)) return markdown;
      lines[at] = `${key}: [${items.concat(label).join(", ")}]${comment ? ` ${comment}` : ""}`;
    } else if (rest === "") {
      let end = at + 1;
      while (end < lines.length && /^\s*-\s/.test(lines[end])) end += 1;
      const items = lines.slice(at + 1, end).map((line) => line.replace(/^\s*-\s*/, "").trim());
      if (items.includes(label)) return markdown;
      const indent = end > at + 1 ? /^(\s*)-/.exec(lines[end - 1])[1] : "  ";
      lines.splice(end, 0, `${indent}- ${label}`);
    } else if (/^[a-z0-9-]+$/.test(rest)) {
      if (rest === label) return markdown;
      lines[at] = `${key}: [${rest}, ${label}]${comment ? ` ${comment}` : ""}`;
    } else {
      return null;
    }
  }
  return `---\n${lines.join("\n")}\n---\n${text.slice(front[0].length)}`;
}
window.withLabel = withLabel; // for the browser tests

(function () {
  const form = document.querySelector("form[data-editor]");
  if (!form) return;
  const source = form.querySelector("[data-preview-source]");
  const preview = document.getElementById("preview");
  const tags = document.getElementById("suggested-tags");
  const status = document.getElementById("preview-status");
  const token = form.elements.csrf_token.value;
  const previewUrl = form.dataset.previewUrl;
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
    if (item.source !== "human") {
      const keep = document.createElement("button");
      keep.type = "button";
      keep.className = "keep outline";
      keep.dataset.keep = item.label;
      keep.dataset.kind = item.kind;
      keep.textContent = "Keep";
      keep.setAttribute("aria-label", `Keep ${item.label}: add it to the front matter as your decision`);
      const group = document.createElement("span");
      group.className = "suggestion";
      group.append(wrap, keep);
      return group;
    }
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
    let text = count ? `The tagger suggests ${count} label${count === 1 ? "" : "s"}. Hover over or focus one to see why; `
      + "Keep writes it into the front matter as your own decision."
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
      // Keep what is written: insert the sections, without a second front matter, at the cursor.
      const sections = template.replace(/^---\n[\s\S]*?\n---\n/, "");
      const at = source.selectionStart ?? source.value.length;
      source.setRangeText(`\n${sections}`, at, source.selectionEnd ?? at, "end");
    }
    source.focus();
    refresh();
  });
  tags.addEventListener("click", (event) => {
    const keep = event.target.closest("button[data-keep]");
    if (!keep) return;
    const key = keep.dataset.kind === "facet" ? "facets" : "categories";
    const changed = withLabel(source.value, key, keep.dataset.keep);
    if (changed === null) {
      setStatus(`Add ${keep.dataset.keep} under ${key}: in the front matter yourself; its list is written in a form this page does not edit.`, false, true);
      return;
    }
    source.value = changed;
    refresh();
  });
  source.addEventListener("input", schedule);
  if (source.value.trim()) refresh();
})();
