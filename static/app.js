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

// Escape hides the evidence of the chip under the pointer or focus, without moving focus (WCAG 1.4.13);
// it shows again the next time the chip is hovered over or focused.
document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  document.querySelectorAll(".chip-wrap:hover, .chip-wrap:focus-within").forEach((wrap) => wrap.classList.add("dismissed"));
});
["mouseout", "focusout"].forEach((type) => document.addEventListener(type, (event) => {
  const wrap = event.target.closest && event.target.closest(".chip-wrap.dismissed");
  if (wrap && !wrap.contains(event.relatedTarget)) wrap.classList.remove("dismissed");
}));
