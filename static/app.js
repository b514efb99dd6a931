// Press "/" anywhere outside a text field to jump to the search box.
document.addEventListener("keydown", (event) => {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  const target = event.target;
  if (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName)) return;
  const boxes = document.querySelectorAll("[data-search-box]");
  const box = boxes[boxes.length - 1];
  if (box) { event.preventDefault(); box.focus(); box.select(); }
});

// Buttons marked data-print print the page (the security policy forbids inline script and javascript: links).
document.addEventListener("click", (event) => {
  if (event.target.closest("[data-print]")) window.print();
});

// A select marked data-autosubmit submits its form when changed (sorting search results).
document.addEventListener("change", (event) => {
  if (event.target.matches("select[data-autosubmit]")) event.target.form.requestSubmit();
});

// While a form is on its way, its button shows Pico's busy spinner; coming back through history clears it.
document.addEventListener("submit", (event) => {
  const button = event.submitter || event.target.querySelector("button[type=submit]");
  if (button && !event.defaultPrevented) button.setAttribute("aria-busy", "true");
});
window.addEventListener("pageshow", () => {
  document.querySelectorAll("button[aria-busy=true]").forEach((button) => button.removeAttribute("aria-busy"));
});
