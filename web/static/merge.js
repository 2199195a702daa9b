// The merge page's source picker: searches as you type (/merge/sources, a few names at a
// time), adds sources to the ordered list the form sends, moves and removes them, and
// says what each one's place means (the first wins on every path). Without it the page
// takes the sources typed one a line. Text is only ever set with textContent.
(() => {
  "use strict";
  const picker = document.querySelector("[data-merge-picker]");
  const chosen = document.getElementById("merge-chosen");
  const search = document.getElementById("merge-search");
  const results = document.getElementById("merge-results");
  if (!picker || !chosen || !search || !results) return;
  const status = picker.querySelector("[data-merge-status]");
  picker.hidden = false;

  const rank = () => {
    const items = [...chosen.children];
    items.forEach((li, i) => {
      const shown = li.querySelector(".rank");
      if (shown) {
        shown.textContent = i === 0
          ? (items.length > 1 ? "wins on every path it holds" : "")
          : "adds only the paths the ones above lack";
      }
      for (const button of li.querySelectorAll("button[data-move]")) {
        button.hidden = false;
        const move = button.dataset.move;
        button.disabled = (move === "up" && i === 0) || (move === "down" && i === items.length - 1);
      }
    });
  };
  const has = (source) => [...chosen.children].some((li) => li.dataset.source === source);
  const item = (source) => {
    const li = document.createElement("li");
    li.dataset.source = source;
    const name = document.createElement("span");
    name.className = "source";
    name.textContent = source;
    const shown = document.createElement("span");
    shown.className = "rank muted";
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = "source";
    input.value = source;
    const moves = document.createElement("span");
    moves.className = "moves";
    for (const [move, label, text] of [
      ["up", "Move " + source + " up", "↑"],
      ["down", "Move " + source + " down", "↓"],
      ["remove", "Remove " + source, "Remove"],
    ]) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary";
      button.dataset.move = move;
      button.setAttribute("aria-label", label);
      button.textContent = text;
      moves.appendChild(button);
    }
    li.append(name, " ", shown, input, moves);
    return li;
  };

  chosen.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-move]");
    if (!button) return;
    const li = button.closest("li");
    const move = button.dataset.move;
    if (move === "up" && li.previousElementSibling) {
      chosen.insertBefore(li, li.previousElementSibling);
    } else if (move === "down" && li.nextElementSibling) {
      chosen.insertBefore(li.nextElementSibling, li);
    } else if (move === "remove") {
      li.remove();
      for (const add of results.querySelectorAll("button[data-add]")) {
        if (add.dataset.add === li.dataset.source) add.disabled = false;
      }
    }
    rank();
  });

  const show = (found) => {
    results.replaceChildren();
    for (const hit of found) {
      const li = document.createElement("li");
      const add = document.createElement("button");
      add.type = "button";
      add.className = "secondary";
      add.dataset.add = hit.source;
      add.textContent = "Add";
      add.setAttribute("aria-label", "Add " + hit.source);
      add.disabled = has(hit.source);
      add.addEventListener("click", () => {
        if (!has(hit.source)) chosen.appendChild(item(hit.source));
        add.disabled = true;
        rank();
      });
      const name = document.createElement("span");
      name.className = "source";
      name.textContent = hit.source + (hit.kind === "symlink" ? " (link)" : "");
      li.append(add, " ", name);
      results.appendChild(li);
    }
    if (status) status.textContent = found.length ? "" : "No flist matches.";
  };

  let timer = null;
  let asked = 0;
  const lookup = async () => {
    const text = search.value.trim();
    const mine = ++asked;
    if (!text) {
      results.replaceChildren();
      if (status) status.textContent = "";
      return;
    }
    try {
      const answer = await fetch("/merge/sources?q=" + encodeURIComponent(text), {
        headers: { accept: "application/json" },
      });
      const body = await answer.json();
      if (mine !== asked) return;
      if (!answer.ok || !Array.isArray(body)) {
        results.replaceChildren();
        if (status) status.textContent = String((body && body.message) || "the search failed");
        return;
      }
      show(body);
    } catch (_) {
      if (mine === asked && status) status.textContent = "the search failed; type again";
    }
  };
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(lookup, 150);
  });
  // Enter searches at once; it must not send the merge form.
  search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      clearTimeout(timer);
      lookup();
    }
  });
  rank();
})();
