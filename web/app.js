// The page of a `trainer export RUN --format web` folder: stylise a photo in the browser
// with the run's trained network and with Magenta's arbitrary model, side by side.
//
// Runtime: onnxruntime-web's WebAssembly backend (see docs/web.md for why). The folder is
// self-contained: ort/ holds the runtime, models/ the three ONNX networks, manifest.json
// what the exporter knew (names of inputs and outputs, the network's stride).
// It needs an http(s) server (`python3 -m http.server` in the folder is enough): browsers
// refuse ES modules and WebAssembly fetched from file:// pages.

import * as ort from './ort/ort.wasm.bundle.min.js';
import * as im from './imaging.js';

const $ = (id) => document.getElementById(id);

// One thread unless the page is cross-origin isolated (which needs COOP/COEP headers a
// plain static server does not send); onnxruntime-web would fall back to this anyway.
ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
// Only the binary's address: the bundle carries its own loader, and a path prefix would make
// it fetch a separate loader file that the export does not copy.
ort.env.wasm.wasmPaths = { wasm: new URL('./ort/ort-wasm-simd-threaded.wasm', import.meta.url).href };

const state = {
  manifest: null,
  sessions: {},
  photo: null,        // the photo as chosen, after the longest-side limit
  original: null,     // the photo as decoded
  paintings: { a: null, b: null },
  vectors: new Map(), // picture -> its style vector (paintings and the photo)
  results: {},        // model -> {picture, ms, runMs}
  timings: [],
};

function setStatus(text, kind = 'idle') {
  $('status').textContent = text;
  $('status').dataset.state = kind;
  document.body.dataset.state = kind;
}

async function session(key) {
  if (!state.sessions[key]) {
    const t0 = performance.now();
    const url = state.manifest.models[key].file;
    state.sessions[key] = ort.InferenceSession.create(url, { executionProviders: ['wasm'] })
      .then((s) => { state.timings.push({ load: key, ms: performance.now() - t0 }); return s; });
  }
  return state.sessions[key];
}

async function run(key, feeds) {
  const s = await session(key);
  const spec = state.manifest.models[key];
  const tensors = {};
  for (const [name, value] of Object.entries(feeds)) tensors[name] = new ort.Tensor('float32', value.data, value.dims);
  const out = await s.run(tensors);
  return out[spec.output];
}

// -- the trained network ------------------------------------------------------------------

/** trainer.stylize for a picture that fits: pad to the stride by mirroring, run, crop back. */
export async function paintTrained(photo) {
  const spec = state.manifest.models.trained;
  const padded = im.padSymmetric(photo, spec.factor);
  const y = await run('trained', { [spec.input]: { data: padded.data, dims: [1, padded.height, padded.width, 3] } });
  const out = im.makePicture(padded.width, padded.height, y.data);
  return im.clip01(im.crop(out, 0, 0, photo.height, photo.width));
}

// -- the arbitrary model (nst.arbitrary, fit="whole") -------------------------------------

export async function styleVector(pic) {
  if (!state.vectors.has(pic)) {
    const spec = state.manifest.models.arbitrary_predict;
    const x = im.centerCropSquare(pic, spec.size);
    const y = await run('arbitrary_predict', { [spec.input]: { data: x.data, dims: [1, spec.size, spec.size, 3] } });
    state.vectors.set(pic, Float32Array.from(y.data));
  }
  return state.vectors.get(pic);
}

/** The style vector the sliders ask for: A mixed with B, then pulled toward the photo's own vector. */
export async function chosenVector(photo, mix, strength) {
  let v = await styleVector(state.paintings.a);
  if (state.paintings.b && mix > 0) v = im.blend(v, await styleVector(state.paintings.b), mix);
  if (strength < 1) v = im.blend(await styleVector(photo), v, strength);
  return v;
}

export async function paintArbitrary(photo, vector, side) {
  const spec = state.manifest.models.arbitrary_transform;
  const [h, w] = im.workingSize(photo.height, photo.width, side);
  const x = im.resize(photo, w, h);
  const y = await run('arbitrary_transform', {
    [spec.input]: { data: x.data, dims: [1, h, w, 3] },
    [spec.vector_input]: { data: vector, dims: [1, 1, 1, vector.length] },
  });
  const out = im.clip01(im.makePicture(w, h, Float32Array.from(y.data)));
  return im.resize(out, photo.width, photo.height);
}

// -- the page ------------------------------------------------------------------------------

function show(model, pic, ms, runMs) {
  im.draw(pic, $(`out-${model}`));
  state.results[model] = { picture: pic, ms, runMs };
  $(`time-${model}`).textContent = `(${pic.width}x${pic.height}, ${Math.round(ms)} ms)`;
  const link = $(`save-${model}`);
  link.href = $(`out-${model}`).toDataURL('image/png');
  link.download = `${model}.png`;
  link.hidden = false;
}

async function busy(text, job) {
  setStatus(text, 'busy');
  for (const b of document.querySelectorAll('button')) b.dataset.was = b.disabled, b.disabled = true;
  try {
    await job();
    setStatus('Ready.', 'idle');
  } catch (err) {
    console.error(err);
    setStatus(`Error: ${err.message ?? err}`, 'error');
  } finally {
    for (const b of document.querySelectorAll('button')) b.disabled = b.dataset.was === 'true';
    updateControls();
  }
}

function updateControls() {
  const photo = Boolean(state.photo);
  $('run-trained').disabled = !photo;
  $('run-arbitrary').disabled = !photo || !state.paintings.a;
  $('mix').disabled = !state.paintings.b;
  $('clear-b').disabled = !state.paintings.b;
}

function applyMaxSide() {
  if (!state.original) return;
  const side = Number($('max-side').value);
  const p = state.original;
  state.photo = side && Math.max(p.width, p.height) > side ? im.resizeLongest(p, side) : p;
  im.draw(state.photo, $('view-photo'));
}

async function doTrained() {
  await busy('Painting with the trained network…', async () => {
    await session('trained');
    const t0 = performance.now();
    const pic = await paintTrained(state.photo);
    const ms = performance.now() - t0;
    show('trained', pic, ms, ms);
  });
}

async function doArbitrary() {
  await busy('Painting with the arbitrary model…', async () => {
    await Promise.all([session('arbitrary_predict'), session('arbitrary_transform')]);
    const t0 = performance.now();
    const v = await chosenVector(state.photo, Number($('mix').value), Number($('strength').value));
    const pic = await paintArbitrary(state.photo, v, Number($('side').value));
    const ms = performance.now() - t0;
    show('arbitrary', pic, ms, ms);
  });
}

function thumbnail(file, img) {
  img.src = URL.createObjectURL(file);
}

async function loadPainting(which, blob) {
  const pic = await im.decode(blob);
  state.paintings[which] = pic;
  thumbnail(blob, $(`thumb-${which}`));
}

function wire() {
  $('photo').addEventListener('change', (e) => busy('Reading the photo…', async () => {
    const file = e.target.files[0];
    if (!file) return;
    state.original = await im.decode(file);
    applyMaxSide();
    state.results = {};
  }));
  $('max-side').addEventListener('change', applyMaxSide);
  $('painting-a').addEventListener('change', (e) => e.target.files[0]
    && busy('Reading painting A…', async () => {
      await loadPainting('a', e.target.files[0]);
      $('name-a').textContent = '';
    }));
  $('painting-b').addEventListener('change', (e) => e.target.files[0]
    && busy('Reading painting B…', () => loadPainting('b', e.target.files[0])));
  $('clear-b').addEventListener('click', () => {
    state.paintings.b = null;
    $('thumb-b').removeAttribute('src');
    $('painting-b').value = '';
    updateControls();
  });
  $('run-trained').addEventListener('click', doTrained);
  $('run-arbitrary').addEventListener('click', doArbitrary);
  for (const id of ['mix', 'strength']) {
    $(id).addEventListener('input', () => { $(`${id}-value`).textContent = Number($(id).value).toFixed(2); });
    // Moving a slider repaints at once when there is already a result: the style vectors are
    // cached, so only the transformer runs again.
    $(id).addEventListener('change', () => state.results.arbitrary && doArbitrary());
  }
}

async function main() {
  const manifest = await (await fetch('manifest.json')).json();
  state.manifest = manifest;
  document.title = `styletune: ${manifest.run}`;
  $('run-name').textContent = manifest.run;
  const t = manifest.models.trained;
  $('trained-info').textContent = `${t.arch} network, width ${t.width}, step ${t.step}; `;
  if (manifest.painting) {  // the painting the network was trained on, so the two results compare like for like
    await loadPainting('a', await (await fetch(manifest.painting)).blob());
    $('name-a').textContent = "(the run's painting)";
  }
  wire();
  updateControls();
  setStatus('Choose a photo.', 'idle');
}

window.styletune = { state, paintTrained, paintArbitrary, styleVector, chosenVector, im, ort };
main().catch((err) => { console.error(err); setStatus(`Error: ${err.message ?? err}`, 'error'); });
