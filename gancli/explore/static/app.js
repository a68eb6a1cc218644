// The explorer's page: asks the gancli server for images as JSON (PNG data URLs with their commands) and lays them out.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { runs: [], run: null, start: 0, side: 8, label: null, rows: false, truncation: null, upscaler: null,
                selected: [], detail: null, walk: [], timer: null, pending: 0 };

async function api(path, params) {
  const query = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== null && v !== undefined && v !== "") query.set(k, v);
  busy(+1);
  try {
    const response = await fetch(path + "?" + query.toString());
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    showError(null);
    return body;
  } catch (error) {
    showError(error.message);
    throw error;
  } finally {
    busy(-1);
  }
}

function busy(change) {
  state.pending += change;
  $("status").textContent = state.pending > 0 ? "working..." : "";
  document.body.dataset.busy = state.pending > 0 ? "1" : "0";
}

function showError(message) {
  $("error").hidden = !message;
  $("error").textContent = message || "";
}

const run = () => state.runs.find((r) => r.id === state.run);
const common = () => ({ run: state.run, truncation: state.truncation, label: state.label });

async function loadRuns() {
  const body = await api("/api/runs");
  state.runs = body.runs;
  const generators = body.runs.filter((r) => r.kind === "generator" || r.error);
  const select = $("run");
  select.innerHTML = "";
  for (const r of generators) {
    const option = new Option(r.error ? `${r.name} (cannot be read)` : `${r.name} (${r.arch}, ${r.image_size}px)`, r.id);
    select.add(option);
  }
  const upscalers = body.runs.filter((r) => r.kind === "upscaler");
  $("upscaler").innerHTML = '<option value="">(none)</option>';
  for (const r of upscalers) $("upscaler").add(new Option(`${r.name} (${r.arch} x${r.scale})`, r.id));
  state.chosenUpscaler = body.upscaler;  // --upscaler RUN; otherwise each run gets its companion, if any
  if (body.upscaler !== null) $("upscaler").value = String(body.upscaler);
  state.upscaler = $("upscaler").value === "" ? null : Number($("upscaler").value);
  document.body.classList.toggle("has-upscalers", upscalers.length > 0);
  if (!generators.length) return showError("No generator runs here; train one with: gancli train mnist --recipe quick");
  await chooseRun(generators[0].id);
}

async function chooseRun(id) {
  state.run = Number(id);
  $("run").value = String(id);
  const r = run();
  state.selected = [];
  state.detail = null;
  state.start = 0;
  $("detail").hidden = true;
  if (r.error) {
    $("grid").innerHTML = "";
    $("run-info").textContent = "";
    return showError(r.error);
  }
  $("run-info").textContent = `${r.arch}, ${r.image_size}x${r.image_size}, step ${r.step}, ${r.dataset}`;
  document.body.classList.toggle("has-classes", r.classes.length > 0);
  document.body.classList.toggle("has-truncation", r.truncation);
  state.label = r.classes.length ? 0 : null;
  $("class").innerHTML = "";
  r.classes.forEach((name, i) => $("class").add(new Option(name === String(i) ? name : `${i}: ${name}`, i)));
  if (state.chosenUpscaler === null) {  // an upscaler trained on this run's data is its companion: shown beside it
    const companion = state.runs.find((x) => x.kind === "upscaler" && x.dataset === r.dataset);
    state.upscaler = companion ? companion.id : null;
    $("upscaler").value = companion ? String(companion.id) : "";
  }
  state.truncation = null;
  $("truncation").value = 1;
  $("truncation-value").textContent = "1";
  await showPage();
  updateSelection();
  await showProjected();
}

async function showProjected() {
  const body = await api("/api/latents", { run: state.run });
  $("projected-section").hidden = body.images.length === 0;
  fillStrip($("projected"), body.images, (picture) => {
    $("detail").hidden = false;
    $("detail-title").textContent = picture.filename.replace(".png", "") + " (projected)";
    show("detail", picture);
  });
}

function fillStrip(strip, pictures, onClick) {
  strip.innerHTML = "";
  for (const picture of pictures) {
    const img = new Image();
    img.src = picture.src;
    img.title = `${picture.command}  # writes ${outdirOf(picture.command)}${picture.filename}: ${picture.note}`;
    img.addEventListener("click", () => onClick(picture));
    strip.append(img);
  }
}

async function showPage() {
  const r = run();
  if (!r || r.error) return;
  const count = state.side * state.side;
  const grid = $("grid");
  const cell = Math.max(40, Math.min(110, Math.floor(660 / state.side)));
  if (state.rows && r.classes.length) {
    const seeds = `${state.start}-${state.start + state.side - 1}`;
    const rows = await Promise.all(r.classes.map((_, label) => api("/api/images", { ...common(), label, seeds })));
    grid.innerHTML = "";
    grid.style.gridTemplateColumns = `6em repeat(${state.side}, ${Math.min(cell, Math.floor(660 / state.side))}px)`;
    rows.forEach((body, label) => {
      const name = document.createElement("div");
      name.className = "label";
      name.textContent = r.classes[label];
      grid.append(name);
      body.images.forEach((picture, i) => grid.append(tile(picture, state.start + i, label)));
    });
  } else {
    const body = await api("/api/images", { ...common(), seeds: `${state.start}-${state.start + count - 1}` });
    grid.innerHTML = "";
    grid.style.gridTemplateColumns = `repeat(${state.side}, ${cell}px)`;
    body.images.forEach((picture, i) => grid.append(tile(picture, state.start + i, state.label)));
  }
  $("jump").value = state.start;
  markSelected();
}

function tile(picture, seed, label) {
  const img = new Image();
  img.src = picture.src;
  img.alt = `seed ${seed}`;
  img.title = picture.command;
  img.dataset.seed = seed;
  if (label !== null) img.dataset.label = label;
  img.addEventListener("click", () => select(seed, label));
  return img;
}

function markSelected() {
  for (const img of $("grid").querySelectorAll("img")) img.classList.toggle("selected", state.selected.includes(Number(img.dataset.seed)));
}

async function select(seed, label) {
  if (label !== null && label !== undefined && label !== state.label) {
    state.label = label;
    $("class").value = String(label);
  }
  const at = state.selected.indexOf(seed);
  if (at >= 0 && state.detail === seed) state.selected.splice(at, 1);
  else if (at < 0) state.selected.push(seed);
  if (state.selected.length > 16) state.selected.shift();
  markSelected();
  await showDetail(seed);
  updateSelection();
}

async function showDetail(seed) {
  state.detail = seed;
  const body = await api("/api/images", { ...common(), seeds: String(seed) });
  const picture = body.images[0];
  $("detail").hidden = false;
  $("detail-title").textContent = `Seed ${seed}` + (state.label !== null ? `, class ${run().classes[state.label]}` : "");
  show("detail", picture);
  $("detail-size").textContent = `${run().image_size}x${run().image_size}`;
  $("detail-up-figure").hidden = $("detail-up-command-row").hidden = state.upscaler === null;
  if (state.upscaler !== null) {
    const up = (await api("/api/images", { ...common(), seeds: String(seed), upscaler: state.upscaler })).images[0];
    $("detail-up").src = up.src;
    $("detail-up-command").textContent = up.command + `   # writes explore/${up.filename}`;
    $("detail-up-download").href = up.src;
    $("detail-up-download").download = up.filename.replace(".png", "-upscaled.png");
    const u = state.runs.find((x) => x.id === state.upscaler);
    $("detail-up-size").textContent = `upscaled x${u.scale} by ${u.name}`;
  }
  $("variations").innerHTML = "";
}

function show(prefix, picture) {
  $(`${prefix}-img`).src = picture.src;
  $(`${prefix}-command`).textContent = picture.command + `   # writes ${outdirOf(picture.command)}${picture.filename}` + (picture.note ? ` (${picture.note})` : "");
  $(`${prefix}-download`).href = picture.src;
  $(`${prefix}-download`).download = picture.filename;
}

function outdirOf(command) {
  const match = command.match(/--outdir (\S+)/);
  return match ? match[1] : "";
}

function updateSelection() {
  const n = state.selected.length;
  $("selection").hidden = n === 0;
  $("chips").innerHTML = "";
  for (const seed of state.selected) {
    const chip = document.createElement("span");
    chip.className = "chip";
    chip.textContent = seed;
    chip.title = "remove";
    chip.addEventListener("click", () => { state.selected = state.selected.filter((s) => s !== seed); markSelected(); updateSelection(); });
    $("chips").append(chip);
  }
  $("walk").hidden = n < 2;
  $("mixing").hidden = !(n >= 2 && run() && run().mixing);
  if (n >= 2) loadWalk();
  if (n >= 2 && run().mixing) loadMix();
}

async function loadWalk() {
  stop();
  const frames = Math.max(2, Math.min(120, Number($("frames").value) || 24));
  const perSegment = Math.min(frames, Math.floor(240 / (state.selected.length - 1)));
  const body = await api("/api/walk", { ...common(), seeds: state.selected.join(","), frames: perSegment, method: $("method").value });
  state.walk = body.images;
  const slider = $("walk-slider");
  slider.max = state.walk.length - 1;
  slider.value = Math.min(Number(slider.value), state.walk.length - 1);
  showFrame();
}

function showFrame() {
  const i = Number($("walk-slider").value);
  const picture = state.walk[i];
  if (!picture) return;
  show("walk", picture);
  $("walk-caption").textContent = `image ${i + 1} of ${state.walk.length}, through seeds ${state.selected.join(", ")}`;
}

function play() {
  if (state.timer) return stop();
  $("play").textContent = "Pause";
  state.timer = setInterval(() => {
    const slider = $("walk-slider");
    slider.value = (Number(slider.value) + 1) % state.walk.length;
    showFrame();
  }, 1000 / 12);
}

function stop() {
  clearInterval(state.timer);
  state.timer = null;
  $("play").textContent = "Play";
}

async function loadMix() {
  const [a, b] = state.selected.slice(-2);
  const layer = $("mix-layer");
  const body = await api("/api/mix", { run: state.run, seed: a, mix: b, layer: layer.value, truncation: state.truncation });
  layer.max = body.layers;
  show("mix", body.images[0]);
  $("mix-layer-value").textContent = layer.value;
  $("mix-caption").textContent = `seed ${a}'s coarse styles with seed ${b}'s fine ones`;
}

async function loadVariations() {
  if (state.detail === null) return;
  const body = await api("/api/variations", { ...common(), seed: state.detail, count: 8, distance: $("distance").value });
  fillStrip($("variations"), body.images, (picture) => show("detail", picture));
}

function copy(button) {
  const text = $(button.dataset.for).textContent.split("   #")[0];
  const done = () => { button.textContent = "Copied"; setTimeout(() => (button.textContent = "Copy"), 1200); };
  if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(text).then(done, () => fallbackCopy(text, done));
  else fallbackCopy(text, done);
}

function fallbackCopy(text, done) {
  const area = document.createElement("textarea");
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand("copy");
  area.remove();
  done();
}

function wire() {
  $("run").addEventListener("change", (e) => chooseRun(e.target.value));
  $("page-size").addEventListener("change", (e) => { state.side = Number(e.target.value); showPage(); });
  $("prev").addEventListener("click", () => { state.start = Math.max(0, state.start - state.side * (state.rows ? 1 : state.side)); showPage(); });
  $("next").addEventListener("click", () => { state.start += state.side * (state.rows ? 1 : state.side); showPage(); });
  $("go").addEventListener("click", () => { state.start = Math.max(0, Math.floor(Number($("jump").value) || 0)); showPage(); });
  $("jump").addEventListener("keydown", (e) => { if (e.key === "Enter") $("go").click(); });
  $("class").addEventListener("change", (e) => { state.label = Number(e.target.value); refresh(); });
  $("rows-per-class").addEventListener("change", (e) => { state.rows = e.target.checked; showPage(); });
  $("truncation").addEventListener("input", (e) => { $("truncation-value").textContent = e.target.value; });
  $("truncation").addEventListener("change", (e) => { state.truncation = Number(e.target.value) === 1 ? null : e.target.value; refresh(); });
  $("upscaler").addEventListener("change", (e) => {
    state.upscaler = state.chosenUpscaler = e.target.value === "" ? null : Number(e.target.value);
    if (state.detail !== null) showDetail(state.detail);
  });
  $("clear").addEventListener("click", () => { state.selected = []; markSelected(); updateSelection(); });
  $("walk-slider").addEventListener("input", showFrame);
  $("play").addEventListener("click", play);
  $("method").addEventListener("change", loadWalk);
  $("frames").addEventListener("change", loadWalk);
  $("mix-layer").addEventListener("input", loadMix);
  $("variations-button").addEventListener("click", loadVariations);
  $("distance").addEventListener("change", loadVariations);
  for (const button of document.querySelectorAll("button.copy")) button.addEventListener("click", () => copy(button));
}

async function refresh() {
  await showPage();
  if (state.detail !== null) await showDetail(state.detail);
  updateSelection();
}

wire();
loadRuns().catch(() => {});
