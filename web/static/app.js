// flisthub's only script: copy buttons and dates in the reader's locale. Every page reads
// and works without it; it is loaded from 'self' (no inline script anywhere).
"use strict";
document.addEventListener("click", (event) => {
  const button = event.target.closest("button.copy");
  if (!button) return;
  const text = button.dataset.copy;
  if (!text || !navigator.clipboard) return;
  navigator.clipboard.writeText(text).then(() => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  });
});
for (const time of document.querySelectorAll("time[datetime]")) {
  const date = new Date(time.getAttribute("datetime"));
  if (!isNaN(date)) {
    time.title = time.textContent;
    time.textContent = date.toLocaleString();
  }
}
for (const button of document.querySelectorAll("button.copy")) {
  button.hidden = false;
}
