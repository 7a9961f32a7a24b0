// Local Value review queue: when htmx has put an action's answer in place of its row, move the focus to the first
// control of the next row still waiting (or to the refusal, when the action was refused), so the queue can be
// worked through with the keyboard alone. Without JavaScript the forms post and redirect to the next row.
// htmx:load fires on the new content itself (the replaced row is gone from the page by then).
document.body.addEventListener("htmx:load", (event) => {
  const added = event.target;
  if (!(added instanceof HTMLElement)) return;
  if (added.classList.contains("nhsuk-error-summary")) {
    added.focus();
    return;
  }
  if (!added.classList.contains("app-review-item--done")) return;
  let next = added.nextElementSibling;
  while (next && next.classList.contains("app-review-item--done")) next = next.nextElementSibling;
  const control = next && next.querySelector("input:not([type=hidden]), select, textarea, button");
  if (control) {
    control.focus();
    return;
  }
  const status = added.querySelector("[role=status]");
  if (status) {
    status.setAttribute("tabindex", "-1");
    status.focus();
  }
});
