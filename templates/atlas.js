// Filter Atlas: jump box, keyboard navigation on filter pages, grid controls.
// Works from file:// — the index it searches is a plain script (atlas-index.js).
"use strict";

const root = document.body.dataset.root || "";

function currentModel(atlas) {
  return atlas.models.find((m) => m.slug === document.body.dataset.model);
}

// The model named at the start of the query ("mobilenet/conv_pw_7 12"), if any, and the rest.
function splitModel(atlas, text) {
  const names = atlas.models.slice().sort((a, b) => b.name.length - a.name.length);
  for (const model of names) {
    const name = model.name.toLowerCase();
    if (text === name) return { model, rest: "" };
    if (text.startsWith(name) && /[\s/:#]/.test(text[name.length])) {
      return { model, rest: text.slice(name.length + 1).trim() };
    }
  }
  return { model: null, rest: text };
}

// Of several hits in different models, the one in the page's own model, if there is one.
function narrow(hits, atlas) {
  const own = currentModel(atlas);
  const mine = hits.filter((h) => own && h.model === own);
  return hits.length > 1 && mine.length === 1 ? mine : hits;
}

function findTarget(query) {
  const atlas = window.ATLAS;
  const text = query.trim().toLowerCase().replace(/\s+/g, " ");
  const example = atlas ? (currentModel(atlas) || atlas.models[0]).example : "LAYER 0";
  if (!atlas || !text) return { error: `Type a layer and a filter, e.g. ${example}` };
  const { model, rest } = splitModel(atlas, text);
  if (model && !rest) return { href: model.path };
  const models = model ? [model] : atlas.models;
  const match = rest.match(/^(.+?)(?:[\s/:#]+(\d+))?$/);
  const name = match[1], index = match[2];
  let hits = narrow(models.flatMap((m) => m.layers
    .filter((l) => l.name.toLowerCase() === name || l.alias === name).map((layer) => ({ model: m, layer }))), atlas);
  if (!hits.length) {
    const blocks = narrow(models.flatMap((m) => Object.keys(m.blocks)
      .filter((b) => b.toLowerCase() === name).map((b) => ({ model: m, path: m.blocks[b] }))), atlas);
    if (blocks.length === 1 && index === undefined) return { href: blocks[0].path };
    if (blocks.length > 1) hits = blocks;
    else return { error: `No layer “${name}” in this atlas` };
  }
  if (hits.length > 1) {
    const where = hits.map((h) => h.model.name).join(", ");
    return { error: `“${name}” is in ${where}; name the model, e.g. ${hits[0].model.name}/${name}` };
  }
  const { layer } = hits[0];
  if (index === undefined) return { href: layer.path };
  const n = Number(index);
  const href = layer.filters[String(n)];
  if (!href) return { error: `${layer.name} has no filter ${n} in this atlas` };
  return { href };
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
    // One of the views' pictures, or each filter's top dataset example, in the same grid.
    show.addEventListener("change", () => {
      const key = "show" + show.value.charAt(0).toUpperCase() + show.value.slice(1);
      for (const item of grid.querySelectorAll("a.thumb")) {
        if (item.dataset[key]) item.querySelector("img").src = item.dataset[key];
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
