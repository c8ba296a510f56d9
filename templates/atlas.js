// Filter Atlas: jump box, keyboard navigation on filter pages, grid controls.
// Works from file:// — the index it searches is a plain script (atlas-index.js).
"use strict";

const root = document.body.dataset.root || "";

function findTarget(query) {
  const atlas = window.ATLAS;
  const text = query.trim().toLowerCase().replace(/\s+/g, " ");
  if (!atlas || !text) return { error: `Type a layer and a filter, e.g. ${atlas ? atlas.example : "LAYER 0"}` };
  const match = text.match(/^(.+?)(?:[\s/:#]+(\d+))?$/);
  const name = match[1], index = match[2];
  const layer = atlas.layers.find((l) => l.name.toLowerCase() === name || l.alias === name);
  if (!layer) {
    const block = Object.keys(atlas.blocks).find((b) => b.toLowerCase() === name);
    if (block && index === undefined) return { href: atlas.blocks[block] };
    return { error: `No layer “${name}” in this atlas` };
  }
  if (index === undefined) return { href: layer.path };
  const n = Number(index);
  if (!layer.filters.includes(n)) return { error: `${layer.name} has no filter ${n} in this atlas` };
  return { href: `filters/${layer.slug}/${n}.html` };
}

function setUpJump() {
  const form = document.querySelector("form.jump");
  if (!form) return;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const result = findTarget(form.elements.q.value);
    const status = document.getElementById("jump-status");
    if (result.href) {
      status.textContent = "";
      window.location.href = root + result.href;
    } else {
      status.textContent = result.error;
    }
  });
}

function setUpKeys() {
  if (document.body.dataset.page !== "filter") return;
  const rels = { ArrowLeft: "prev", ArrowRight: "next", ArrowUp: "up" };
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
    const rel = rels[event.key];
    const link = rel && document.querySelector(`a[rel="${rel}"]`);
    if (link) {
      event.preventDefault();
      window.location.href = link.href;
    }
  });
}

function setUpGrid() {
  const grid = document.getElementById("grid");
  if (!grid) return;
  const size = document.getElementById("thumb-size");
  const sort = document.getElementById("sort-by");
  const saved = window.localStorage ? localStorage.getItem("atlas-thumb-size") : null;
  if (saved) size.value = saved;
  const applySize = () => {
    grid.style.setProperty("--thumb", `${size.value}px`);
    try { localStorage.setItem("atlas-thumb-size", size.value); } catch (e) { /* file:// may refuse */ }
  };
  size.addEventListener("input", applySize);
  applySize();
  const show = document.getElementById("show");
  if (show) {
    // Visualizations or each filter's top dataset example, in the same grid.
    show.addEventListener("change", () => {
      for (const item of grid.querySelectorAll("a.thumb[data-example]")) {
        item.querySelector("img").src = item.dataset[show.value];
      }
    });
  }
  sort.addEventListener("change", () => {
    const key = sort.value;
    const items = Array.from(grid.children);
    items.sort((a, b) => key === "activation"
      ? Number(b.dataset.activation) - Number(a.dataset.activation)
      : Number(a.dataset.index) - Number(b.dataset.index));
    grid.append(...items);
  });
}

setUpJump();
setUpKeys();
setUpGrid();
