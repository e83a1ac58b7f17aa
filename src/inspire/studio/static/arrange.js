// The arrange view: keeper passages and whole clips dragged from a bin onto a timeline, moved,
// trimmed, crossfaded and balanced, heard in the page as the renderer will make them, saved as
// the piece.toml `inspire compose` renders (one format, two editors: a hand-written piece opens
// here too), and rendered by the real compose as a background job.
//
// The timeline is sequential like the arrangement it edits: each part starts where the one
// before it ends, less their crossfade. Parts alternate between two rows so an overlap shows as
// two parts side by side; the strip between the rows holds each join's crossfade handle.
// Written by hand (no library edits a timeline like this); waveforms are drawn from the peaks
// the server computes (/api/waveform), the same ones wavesurfer draws in the clips view.

import { ApiError, clock, getJSON, postJSON, putJSON, say, token } from './api.js';
import { layout as checkLayout } from './mixdown.js';
import { Player, build as buildMix } from './preview.js';
import { claim, loadWaveform, trackColour } from './wave.js';

const ROW_H = 86;          // px: one row of the lane
const JOIN_H = 22;         // px: the strip between the rows, with the crossfade handles
const LANE_H = 2 * ROW_H + JOIN_H;
const EDGE_PX = 7;         // px at each end of a part that trim instead of move
const DRAG_PX = 4;         // px a pointer moves before a press becomes a drag
const MIN_PART_S = 0.05;
const MIN_PPS = 2;
const MAX_PPS = 400;
const MAX_CANVAS_PX = 30000;
const POLL_MS = 500;
const DRAFT_KEY = 'inspire-arrange-draft';  // + the opened folders: a draft belongs to what was opened
const JOB_KEY = 'inspire-arrange-job';
const HISTORY = 200;  // undo steps kept
const DEFAULT_TOP = Object.freeze({ sample_rate: null, clips_dir: null, noise_reduction: 'mix', lufs: -14,
  true_peak: -1, fade_in_s: 0.05, fade_out_s: 1.0 });
const NUMBER_FIELDS = ['in_s', 'out_s', 'gain_db', 'crossfade_s'];

let uids = 0;
const S = {
  parts: [],              // {uid, clip, file, in_s, out_s, gain_db, crossfade_s, note, info}
  top: { ...DEFAULT_TOP },
  clipsDirAt: null,       // clips_dir as an opened folder ("r0/clips/job"), when the piece has one
  header: '',
  opened: null,           // {root, path, where}: the file this arrangement came from or was saved to
  targets: [],            // where new pieces go: [{root, folder, run, where}]
  pieces: [],
  bin: [],
  selected: null,         // uid of the selected part
  pps: 40,                // zoom: pixels per second
  playhead: 0,            // seconds
  dirty: false,
  problem: null,          // {message, part, field}: what the renderer would refuse
  built: null,            // the preview mix and the version of the arrangement it was built from
  version: 0,
  drag: null,
  job: null,
  ready: false,
  session: '',            // the opened folders, keying the draft and the render being watched
  history: [],            // snapshots of the arrangement, for undo and redo
  at: -1,                 // the snapshot shown
};
const player = new Player({ onEnd: () => { showPlaying(); } });
const el = {};

// ---- the model ---------------------------------------------------------------------------------

const partLen = (p) => Math.max(0, (p.out_s ?? (p.info.duration_s || 0)) - p.in_s);
const round3 = (x) => Math.round(x * 1000) / 1000;
const byUid = (uid) => S.parts.find((p) => p.uid === uid) || null;

function places(parts = S.parts) {
  const starts = [];
  let t = 0;
  parts.forEach((p, i) => {
    starts.push(t);
    t += partLen(p) - (i < parts.length - 1 ? p.crossfade_s : 0);
  });
  return { starts, total: parts.length ? t : 0 };
}

function rate() {
  return S.top.sample_rate || (S.parts.find((p) => p.info.sample_rate) || { info: { sample_rate: 16000 } }).info.sample_rate;
}

function newPart(info, { in_s, out_s, clip = null, gain_db = 0, crossfade_s = 0, note = '' }) {
  return { uid: ++uids, clip, file: info.file || null, in_s, out_s, gain_db, crossfade_s, note, info };
}

/** Keep every crossfade inside the parts it joins (after a trim or a move), as DAWs do. */
function fitCrossfades() {
  const n = S.parts.length;
  let shortened = false;
  S.parts.forEach((p, k) => {
    const into = k ? S.parts[k - 1].crossfade_s : 0;
    const most = k === n - 1 ? 0 : Math.max(0, Math.min(partLen(p) - into, partLen(S.parts[k + 1])));
    if (p.crossfade_s > most + 1e-9) { p.crossfade_s = round3(Math.max(0, most - 0.0005)); shortened = k < n - 1; }
  });
  if (shortened) say('a crossfade was shortened to fit its parts');
}

function changed({ fit = true, remember = true } = {}) {
  if (fit) fitCrossfades();
  S.dirty = true;
  S.version++;
  if (remember) snapshot();
  check();
  draw();
  saveDraft();
  document.body.dataset.arrangeVersion = String(S.version);
  if (player.playing) refreshSoon();
}

function snapshot() {
  S.history = S.history.slice(0, S.at + 1);
  S.history.push({ parts: S.parts.map((p) => ({ ...p })), top: { ...S.top }, selected: S.selected });
  if (S.history.length > HISTORY) S.history.shift();
  S.at = S.history.length - 1;
}

function undo(step) {
  const to = S.at + step;
  if (to < 0 || to >= S.history.length) { say(step < 0 ? 'nothing to undo' : 'nothing to redo'); return; }
  S.at = to;
  const shot = S.history[to];
  S.parts = shot.parts.map((p) => ({ ...p }));
  S.top = { ...shot.top };
  S.selected = shot.selected;
  showSettings();
  changed({ fit: false, remember: false });
  say(step < 0 ? 'undone' : 'redone');
}

// The arrangement changed while the preview plays: mix again and carry on from the same moment.
let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    if (!player.playing || S.problem) return;
    try {
      await remix();
    } catch (err) {
      say(`cannot preview: ${err.message}`, { error: true });
    }
  }, 300);
}

/** What the renderer would refuse, checked with the preview's copy of its rules. */
function check() {
  S.problem = null;
  if (!S.parts.length) return;
  const missing = S.parts.findIndex((p) => p.info.error || !p.file);
  if (missing >= 0) {
    S.problem = { message: `part ${missing + 1}: ${S.parts[missing].info.error || 'its clip is not in the opened folders'}`,
      part: missing, field: 'clip' };
    return;
  }
  const sr = rate();
  try {
    checkLayout(S.parts.map((p) => ({ ...p, samples: { length: Math.round(p.info.duration_s * sr) } })), S.top, sr);
  } catch (err) {
    S.problem = { message: err.message, part: err.part, field: err.field };
  }
}

// ---- the page ----------------------------------------------------------------------------------

function html() {
  return `
    <div class="toolbar arrange-bar">
      <label>piece <select id="a-open" title="open a piece.toml from the opened folders"></select></label>
      <label>name <input id="a-name" type="text" spellcheck="false" size="16" placeholder="piece name"></label>
      <span id="a-where" class="where mono"></span>
      <button id="a-save" type="button" title="save as piece.toml (Ctrl+S)">Save</button>
      <span class="sep"></span>
      <button id="a-play" type="button" title="preview in the page (Space)">&#9654; Play</button>
      <span id="a-time" class="mono time"></span>
      <span class="sep"></span>
      <span class="zoom"><button id="a-zoom-out" type="button" title="zoom out (-)">&minus;</button><button id="a-zoom-fit"
        type="button" title="fit the piece">fit</button><button id="a-zoom-in" type="button" title="zoom in (+)">+</button></span>
      <span class="sep"></span>
      <label class="check" title="also write each part as an aligned stem"><input id="a-stems" type="checkbox"> stems</label>
      <button id="a-render" type="button" class="primary" title="render with inspire compose">Render</button>
      <span id="a-ask" class="ask" hidden></span>
    </div>
    <div class="arrange-layout">
      <aside class="bin" aria-label="keepers">
        <div class="bin-head"><h2>Keepers</h2>
          <label class="check" title="every clip, not only those kept"><input id="a-all" type="checkbox"> all clips</label>
          <button id="a-refresh" type="button" title="look again">&#8635;</button></div>
        <div id="a-bin" class="bin-list"></div>
        <p class="hint">Drag a passage onto the timeline (double-click adds it at the end); click to listen.</p>
      </aside>
      <div class="arrange-main">
        <div id="a-scroll" class="timeline-scroll">
          <div id="a-timeline" class="timeline">
            <canvas id="a-ruler" class="ruler" title="click to move the playhead"></canvas>
            <div id="a-lane" class="lane"></div>
            <div id="a-marker" class="insert-marker" hidden></div>
            <div id="a-playhead" class="playhead"></div>
          </div>
        </div>
        <div id="a-problem" class="problem" role="alert"></div>
        <div class="arrange-bottom">
          <form id="a-inspector" class="inspector" autocomplete="off"></form>
          <form id="a-settings" class="settings" autocomplete="off">
            <h3>Piece</h3>
            <label>loudness <input name="lufs" type="number" step="0.5" min="-70" max="0"> LUFS</label>
            <label>true peak <input name="true_peak" type="number" step="0.1" min="-30" max="0"> dBTP</label>
            <label>fade in <input name="fade_in_s" type="number" step="0.05" min="0"> s</label>
            <label>fade out <input name="fade_out_s" type="number" step="0.05" min="0"> s</label>
            <label>noise reduction <select name="noise_reduction"><option value="mix">on the mix</option>
              <option value="parts">on each part</option><option value="off">off</option></select></label>
            <label>rate <input name="sample_rate" type="number" step="1" min="1000" placeholder="clips'"> Hz</label>
            <p class="hint">The preview plays crossfades, gains, fades and loudness as the render makes them; noise
              reduction is heard only in the render.</p>
          </form>
          <div id="a-output" class="output"></div>
        </div>
      </div>
    </div>`;
}

function wire() {
  const view = document.getElementById('arrange-view');
  view.innerHTML = html();
  for (const node of view.querySelectorAll('[id^="a-"]')) el[node.id.slice(2)] = node;
  el.save.addEventListener('click', () => save());
  el.play.addEventListener('click', () => togglePlay());
  el.render.addEventListener('click', () => renderPiece());
  el['zoom-in'].addEventListener('click', () => zoom(1.5));
  el['zoom-out'].addEventListener('click', () => zoom(1 / 1.5));
  el['zoom-fit'].addEventListener('click', () => fit());
  el.all.addEventListener('change', () => loadBin());
  el.refresh.addEventListener('click', () => { loadBin(); loadPieces(); });
  el.open.addEventListener('change', () => openChosen());
  el.name.addEventListener('change', () => { el.name.value = cleanName(el.name.value); showWhere(); saveDraft(); });
  el.ruler.addEventListener('pointerdown', (ev) => { setPlayhead(timeAt(ev.clientX)); });
  el.lane.addEventListener('pointerdown', onLanePointerDown);
  el.scroll.addEventListener('scroll', () => drawRuler());
  el.scroll.addEventListener('wheel', (ev) => {
    if (!(ev.ctrlKey || ev.metaKey)) return;
    ev.preventDefault();
    zoom(ev.deltaY < 0 ? 1.25 : 0.8, ev.clientX);
  }, { passive: false });
  el.settings.addEventListener('change', onSettings);
  el.settings.addEventListener('submit', (ev) => ev.preventDefault());
  el.inspector.addEventListener('submit', (ev) => ev.preventDefault());
  document.addEventListener('keydown', onKey);
  window.addEventListener('resize', () => draw());
  document.addEventListener('visibilitychange', () => { if (!document.hidden && visible()) loadBin(); });
  window.addEventListener('beforeunload', saveDraft);
  window.addEventListener('hashchange', () => { if (!visible() && player.playing) { player.stop(); showPlaying(); } });
  el.lane.addEventListener('wheel', onGainWheel, { passive: false });
}

const visible = () => !document.getElementById('arrange-view').hidden;

// ---- drawing the timeline ------------------------------------------------------------------

function timeAt(clientX) {
  return Math.max(0, (clientX - el.lane.getBoundingClientRect().left) / S.pps);
}

function draw() {
  if (!el.lane) return;
  const { starts, total } = places();
  const width = Math.max(el.scroll.clientWidth, Math.ceil((total + 15) * S.pps));
  el.timeline.style.width = `${width}px`;
  el.lane.style.height = `${LANE_H}px`;
  const keep = new Map([...el.lane.querySelectorAll('.part')].map((n) => [Number(n.dataset.uid), n]));
  const nodes = [];
  S.parts.forEach((p, i) => {
    let node = keep.get(p.uid);
    if (!node) node = partNode(p);
    keep.delete(p.uid);
    placePart(node, p, i, starts[i]);
    nodes.push(node);
  });
  for (const n of keep.values()) n.remove();
  for (const n of el.lane.querySelectorAll('.join, .empty-lane')) n.remove();
  S.parts.forEach((p, i) => { if (i < S.parts.length - 1) nodes.push(joinNode(p, i, starts[i + 1])); });
  if (!S.parts.length) {
    const hint = document.createElement('div');
    hint.className = 'empty-lane';
    hint.textContent = 'Drag keeper passages here from the bin: they play one after another, crossfaded where they overlap.';
    nodes.push(hint);
  }
  el.lane.append(...nodes);
  drawRuler();
  showPlayhead();
  showProblem();
  inspect();
  el.time.textContent = `${clock(player.playing ? player.time : S.playhead)} / ${clock(total)}`;
  document.body.dataset.arrangePps = String(S.pps);
  document.body.dataset.arrangeParts = String(S.parts.length);
  el.save.disabled = !token || !S.parts.length;
  el.render.disabled = !token || !S.parts.length || (S.job && !S.job.finished);
}

function partNode(p) {
  const node = document.createElement('div');
  node.className = 'part';
  node.dataset.uid = String(p.uid);
  node.innerHTML = `<canvas class="pwave"></canvas><div class="plabel"><span class="pid mono"></span><span class="pspan"></span>
    <span class="pgain"></span></div><div class="lineage-band"></div><div class="echo"></div>
    <div class="edge l" title="drag to trim the start"></div><div class="edge r" title="drag to trim the end"></div>`;
  return node;
}

function placePart(node, p, i, start) {
  const drag = S.drag && S.drag.uid === p.uid ? S.drag : null;
  const inS = drag && drag.kind === 'trim-l' ? drag.inS : p.in_s;
  const shift = drag && drag.kind === 'trim-l' ? (drag.inS - p.in_s) : 0;
  const len = Math.max(0, (p.out_s ?? p.info.duration_s) - inS);
  const x = (start + shift) * S.pps;
  const w = Math.max(2, len * S.pps);
  node.style.left = `${x}px`;
  node.style.width = `${w}px`;
  node.style.top = `${i % 2 ? ROW_H + JOIN_H : 0}px`;
  node.style.height = `${ROW_H}px`;
  node.dataset.index = String(i);
  node.dataset.clip = p.info.id || p.clip || '';
  node.classList.toggle('selected', p.uid === S.selected);
  node.classList.toggle('missing', !!p.info.error);
  node.classList.toggle('wrong', !!(S.problem && S.problem.part === i));
  node.style.setProperty('--hue', String(hue(p.info.id || p.clip)));
  node.title = p.info.error ? p.info.error : `${p.info.id}: ${clock(inS)}–${clock(p.out_s ?? p.info.duration_s)} of the clip`
    + (p.note ? `\n${p.note}` : '');
  node.querySelector('.pid').textContent = `${i + 1} · ${p.info.id || p.clip}`;
  node.querySelector('.pspan').textContent = `${inS.toFixed(2)}–${(p.out_s ?? p.info.duration_s ?? 0).toFixed(2)} s`;
  node.querySelector('.pgain').textContent = p.gain_db ? `${p.gain_db > 0 ? '+' : ''}${p.gain_db.toFixed(1)} dB` : '';
  drawLineage(node, p, inS, len);
  drawPart(node, p, i, inS, len, w);
}

function hue(name) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return Math.round((h * 137.508) % 360);
}

/** A band per lineage match inside the part, coloured and named by the source track it echoes. */
function drawLineage(node, p, inS, len) {
  const band = node.querySelector('.lineage-band');
  const echo = node.querySelector('.echo');
  band.replaceChildren();
  const tracks = new Map();
  for (const m of p.info.lineage || []) {
    const a = Math.max(m.clip_start_s, inS);
    const b = Math.min(m.clip_end_s, inS + len);
    if (b <= a) continue;
    const seg = document.createElement('span');
    seg.className = 'lin';
    seg.style.left = `${(a - inS) * S.pps}px`;
    seg.style.width = `${Math.max(2, (b - a) * S.pps)}px`;
    seg.style.background = trackColour(m.track, 0.85);
    seg.textContent = (b - a) * S.pps > 48 ? m.track : '';
    seg.title = `${clock(a)}–${clock(b)} of ${p.info.id} echoes ${m.track} at ${clock(m.source_start_s + (a - m.clip_start_s))}`
      + (Number.isFinite(m.similarity) ? ` (similarity ${m.similarity.toFixed(2)})` : '');
    band.appendChild(seg);
    tracks.set(m.track, (tracks.get(m.track) || 0) + (b - a));
  }
  echo.replaceChildren();
  if (tracks.size) {
    const names = [...tracks.entries()].sort((x, y) => y[1] - x[1]).map(([t]) => t);
    const label = document.createElement('span');
    label.textContent = `echoes ${names.join(', ')}`;
    label.style.color = trackColour(names[0], 1);
    echo.appendChild(label);
  }
  node.dataset.echoes = [...tracks.keys()].join(',');
}

/** The part's waveform (its own stretch of the clip, scaled by its gain) and its fades. */
async function drawPart(node, p, i, inS, len, w) {
  const canvas = node.querySelector('canvas');
  const width = Math.min(MAX_CANVAS_PX, Math.max(2, Math.round(w)));
  const key = `${width} ${inS} ${len} ${p.gain_db} ${S.version}`;
  if (canvas.dataset.key === key) return;
  canvas.dataset.key = key;
  canvas.width = width;
  canvas.height = ROW_H;
  canvas.style.width = `${w}px`;
  const ctx = canvas.getContext('2d');
  const data = p.info.waveform_url ? await loadWaveform(p.info.waveform_url).catch(() => null) : null;
  if (canvas.dataset.key !== key) return;  // redrawn meanwhile
  ctx.clearRect(0, 0, width, ROW_H);
  const mid = ROW_H / 2;
  if (data) {
    const peaks = data.peakValues;
    const perS = peaks.length / data.duration;
    const g = 10 ** (p.gain_db / 20);
    ctx.fillStyle = `hsla(${hue(p.info.id)}, 45%, 68%, 0.9)`;
    for (let x = 0; x < width; x++) {
      const a = Math.floor((inS + (x / width) * len) * perS);
      const b = Math.max(a + 1, Math.floor((inS + ((x + 1) / width) * len) * perS));
      let v = 0;
      for (let k = a; k < b && k < peaks.length; k++) v = Math.max(v, peaks[k]);
      const h = Math.min(1, v * g) * (mid - 14);
      ctx.fillRect(x, mid - h, 1, 2 * h);
    }
  }
  // The gain envelope the renderer applies: equal-power curves in crossfades, half-Hann fades.
  const n = S.parts.length;
  const head = i === 0 ? S.top.fade_in_s : S.parts[i - 1].crossfade_s;
  const tail = i === n - 1 ? S.top.fade_out_s : p.crossfade_s;
  const headCurve = i > 0 && S.parts[i - 1].crossfade_s > 0 ? (t) => Math.sin(0.5 * Math.PI * t) : (t) => 0.5 - 0.5 * Math.cos(Math.PI * t);
  const tailCurve = i < n - 1 && p.crossfade_s > 0 ? (t) => Math.cos(0.5 * Math.PI * t) : (t) => 0.5 + 0.5 * Math.cos(Math.PI * t);
  ctx.strokeStyle = 'rgba(255,255,255,0.85)';
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let x = 0; x <= width; x += 2) {
    const t = (x / width) * len;
    let e = 1;
    if (head > 0 && t < head) e *= headCurve(t / head);
    if (tail > 0 && t > len - tail) e *= tailCurve((t - (len - tail)) / tail);
    const y = 14 + (1 - e) * (ROW_H - 30);
    if (x === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  }
  ctx.stroke();
}

function joinNode(p, i, nextStart) {
  const node = document.createElement('div');
  node.className = 'join';
  node.dataset.index = String(i);
  const w = p.crossfade_s * S.pps;
  node.style.left = `${nextStart * S.pps}px`;
  node.style.width = `${Math.max(0, w)}px`;
  node.style.top = `${ROW_H}px`;
  node.style.height = `${JOIN_H}px`;
  node.innerHTML = `<span class="grip" title="drag left for a longer crossfade, right for a shorter one"></span>
    <span class="xlabel">${p.crossfade_s > 0 ? `${p.crossfade_s.toFixed(2)} s` : 'cut'}</span>`;
  node.classList.toggle('cut', !(p.crossfade_s > 0));
  return node;
}

function drawRuler() {
  const c = el.ruler;
  const w = el.scroll.clientWidth;
  const dpr = window.devicePixelRatio || 1;
  c.style.left = `${el.scroll.scrollLeft}px`;
  c.style.width = `${w}px`;
  c.width = Math.round(w * dpr);
  c.height = Math.round(22 * dpr);
  const ctx = c.getContext('2d');
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, 22);
  const from = el.scroll.scrollLeft / S.pps;
  const to = from + w / S.pps;
  const label = [0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => s * S.pps >= 70) || 600;
  const minor = label / (label >= 1 && label % 5 === 0 ? 5 : 2);
  ctx.font = '10px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  for (let t = Math.floor(from / minor) * minor; t <= to; t += minor) {
    const x = (t - from) * S.pps;
    const major = Math.abs(t / label - Math.round(t / label)) < 1e-6;
    ctx.fillStyle = major ? '#9aa1ae' : '#4a5060';
    ctx.fillRect(Math.round(x), major ? 8 : 15, 1, major ? 14 : 7);
    if (major) {
      ctx.fillStyle = '#c9ced8';
      ctx.fillText(label < 1 ? `${t.toFixed(label < 0.5 ? 2 : 1)}s` : clock(t).replace(/\.0$/, ''), Math.round(x) + 3, 1);
    }
  }
}

function showPlayhead() {
  const t = player.playing ? player.time : S.playhead;
  el.playhead.style.left = `${t * S.pps}px`;
  el.time.textContent = `${clock(t)} / ${clock(places().total)}`;
}

function showProblem() {
  const p = S.problem;
  el.problem.textContent = p ? `inspire compose would refuse this: ${p.message}` : '';
  el.problem.hidden = !p;
}

// ---- the inspector: the selected part's fields and the piece's ------------------------------

function inspect() {
  const form = el.inspector;
  const p = byUid(S.selected);
  const i = S.parts.indexOf(p);
  const key = p ? `${p.uid}:${i}:${S.parts.length}` : 'none';
  if (form.dataset.key !== key) {
    form.dataset.key = key;
    if (!p) {
      form.innerHTML = '<h3>Part</h3><p class="hint">Click a part to set its in and out points, gain and crossfade; '
        + 'drag its body to move it, its ends to trim it, the grip between the rows to crossfade; <kbd>Alt</kbd> + '
        + 'wheel sets its gain. <kbd>Space</kbd> plays from the playhead (click the ruler to place it), <kbd>Del</kbd> '
        + 'removes the selected part, <kbd>Ctrl</kbd>+<kbd>Z</kbd> undoes, <kbd>Ctrl</kbd> + wheel zooms.</p>';
      return;
    }
    const last = i === S.parts.length - 1;
    form.innerHTML = `
      <h3>Part ${i + 1}</h3>
      <div class="clipname mono"></div>
      <label>in <input name="in_s" type="number" step="0.01" min="0"> s</label>
      <label>out <input name="out_s" type="number" step="0.01" min="0"> s</label>
      <label>gain <input name="gain_db" type="number" step="0.5" min="-96" max="48"> dB</label>
      <label title="equal-power overlap with the next part">crossfade &rarr; <input name="crossfade_s" type="number"
        step="0.05" min="0" ${last ? 'disabled' : ''}> s</label>
      <label class="wide">note <input name="note" type="text" placeholder="a comment kept in piece.toml"></label>
      <div class="field-error" role="alert"></div>
      <div class="buttons"><button type="button" class="listen">&#9654; from here</button>
        <button type="button" class="remove">Remove</button></div>`;
    form.querySelector('.listen').addEventListener('click', () => { setPlayhead(places().starts[S.parts.indexOf(byUid(S.selected))]); play(); });
    form.querySelector('.remove').addEventListener('click', () => removeSelected());
    for (const input of form.querySelectorAll('input')) input.addEventListener('change', onField);
  }
  if (!p) return;
  const drag = S.drag && S.drag.uid === p.uid ? S.drag : null;
  const set = (name, value) => {
    const input = form.querySelector(`[name="${name}"]`);
    if (input && document.activeElement !== input) input.value = value;
  };
  form.querySelector('.clipname').textContent = p.info.error ? p.info.error
    : `${p.info.id} (${(p.info.duration_s || 0).toFixed(2)} s${p.info.folder ? '' : ', outside the clips folders'})`;
  set('in_s', round3(drag && drag.kind === 'trim-l' ? drag.inS : p.in_s));
  set('out_s', round3(p.out_s ?? p.info.duration_s ?? 0));
  set('gain_db', p.gain_db);
  set('crossfade_s', round3(p.crossfade_s));
  set('note', p.note || '');
  const wrong = S.problem && S.problem.part === i ? S.problem.field : null;
  for (const input of form.querySelectorAll('input')) input.classList.toggle('invalid', input.name === wrong);
  form.querySelector('.field-error').textContent = wrong ? S.problem.message : '';
}

function onField(ev) {
  const p = byUid(S.selected);
  if (!p) return;
  const { name, value } = ev.target;
  if (name === 'note') { p.note = value; changed({ fit: false }); return; }
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v)) {
    say(`${name}: expected a number, got "${value}"`, { error: true });
    ev.target.value = name === 'out_s' ? (p.out_s ?? p.info.duration_s) : p[name];
    return;
  }
  if (name === 'out_s') p.out_s = Math.abs(v - p.info.duration_s) < 5e-4 && p.out_s === null ? null : round3(v);
  else p[name] = name === 'gain_db' ? Math.round(v * 100) / 100 : round3(v);
  changed({ fit: name !== 'crossfade_s' });
}

function onSettings(ev) {
  const { name, value } = ev.target;
  if (name === 'noise_reduction') S.top.noise_reduction = value;
  else if (name === 'sample_rate') S.top.sample_rate = value.trim() === '' ? null : Math.round(Number(value));
  else {
    const v = Number(value);
    if (value.trim() === '' || !Number.isFinite(v)) {
      say(`${name}: expected a number, got "${value}"`, { error: true });
      ev.target.value = S.top[name];
      return;
    }
    S.top[name] = v;
  }
  changed({ fit: false });
}

function showSettings() {
  for (const input of el.settings.querySelectorAll('input, select')) {
    const v = S.top[input.name];
    input.value = v === null || v === undefined ? '' : v;
  }
}

// ---- pointer gestures: drop from the bin, move, trim, crossfade -------------------------------

function onLanePointerDown(ev) {
  if (ev.button !== 0) return;
  const partEl = ev.target.closest('.part');
  const joinEl = ev.target.closest('.join');
  if (joinEl) { startDrag(ev, { kind: 'xfade', index: Number(joinEl.dataset.index) }); return; }
  if (!partEl) { setPlayhead(timeAt(ev.clientX)); select(null); return; }
  const p = byUid(Number(partEl.dataset.uid));
  select(p.uid);
  const rect = partEl.getBoundingClientRect();
  const kind = ev.clientX - rect.left < EDGE_PX ? 'trim-l' : rect.right - ev.clientX < EDGE_PX ? 'trim-r' : 'move';
  startDrag(ev, { kind, uid: p.uid });
}

function startDrag(ev, what) {
  ev.preventDefault();
  const target = el.lane;  // stays while its parts and joins are redrawn under the pointer
  target.setPointerCapture(ev.pointerId);
  const p = what.uid ? byUid(what.uid) : S.parts[what.index];
  const d = { ...what, x0: ev.clientX, active: false, in0: p.in_s, out0: p.out_s ?? p.info.duration_s,
    xf0: p.crossfade_s, inS: p.in_s };
  const move = (e) => {
    const dx = e.clientX - d.x0;
    if (!d.active && Math.abs(dx) < DRAG_PX) return;
    if (!d.active) { d.active = true; S.drag = d; document.body.classList.add('dragging'); }
    dragTo(d, e, dx / S.pps);
  };
  const up = (e) => {
    target.removeEventListener('pointermove', move);
    target.removeEventListener('pointerup', up);
    target.removeEventListener('pointercancel', up);
    document.body.classList.remove('dragging');
    S.drag = null;
    el.marker.hidden = true;
    if (d.active) dropAt(d, e);
    else draw();
  };
  target.addEventListener('pointermove', move);
  target.addEventListener('pointerup', up);
  target.addEventListener('pointercancel', up);
}

function dragTo(d, e, ds) {
  const p = d.uid ? byUid(d.uid) : S.parts[d.index];
  if (d.kind === 'trim-l') {
    const into = S.parts.indexOf(p) > 0 ? S.parts[S.parts.indexOf(p) - 1].crossfade_s : 0;
    d.inS = round3(Math.max(0, Math.min(d.in0 + ds, d.out0 - Math.max(MIN_PART_S, into + p.crossfade_s))));
    draw();
  } else if (d.kind === 'trim-r') {
    p.out_s = round3(Math.max(p.in_s + MIN_PART_S, Math.min(d.out0 + ds, p.info.duration_s)));
    fitCrossfades();
    draw();
  } else if (d.kind === 'xfade') {
    const k = d.index;
    const into = k ? S.parts[k - 1].crossfade_s : 0;
    const next = S.parts[k + 1];
    const most = Math.min(partLen(p) - into, partLen(next) - next.crossfade_s);
    p.crossfade_s = round3(Math.max(0, Math.min(d.xf0 - ds, most)));
    draw();
  } else if (d.kind === 'move') {
    const node = el.lane.querySelector(`.part[data-uid="${p.uid}"]`);
    node.style.transform = `translateX(${ds * S.pps}px)`;
    node.classList.add('moving');
    showMarker(insertionIndex(timeAt(e.clientX), p));
  }
}

function dropAt(d, e) {
  const p = d.uid ? byUid(d.uid) : S.parts[d.index];
  if (d.kind === 'trim-l') p.in_s = d.inS;
  if (d.kind === 'move') {
    const node = el.lane.querySelector(`.part[data-uid="${p.uid}"]`);
    node.style.transform = '';
    node.classList.remove('moving');
    const to = insertionIndex(timeAt(e.clientX), p);
    const from = S.parts.indexOf(p);
    S.parts.splice(from, 1);
    S.parts.splice(to, 0, p);
    if (from !== to) say(`part moved to place ${to + 1}`);
  }
  if (S.parts.length) S.parts[S.parts.length - 1].crossfade_s = 0;
  changed();
}

/** Where a part dropped at time t goes: before the first part whose middle is after t. */
function insertionIndex(t, moving = null) {
  const others = S.parts.filter((p) => p !== moving);
  const { starts } = places(others);
  const k = others.findIndex((p, i) => starts[i] + partLen(p) / 2 > t);
  return k < 0 ? others.length : k;
}

function showMarker(index, moving = null) {
  const others = S.parts.filter((p) => p !== moving);
  const { starts, total } = places(others);
  el.marker.style.left = `${(index < others.length ? starts[index] : total) * S.pps}px`;
  el.marker.hidden = false;
}

/** A bin item dragged onto the lane: a ghost follows the pointer, the marker shows the place. */
function dragFromBin(ev, item) {
  if (ev.button !== 0) return;
  ev.preventDefault();
  const source = ev.currentTarget;
  source.setPointerCapture(ev.pointerId);
  const x0 = ev.clientX;
  const y0 = ev.clientY;
  let ghost = null;
  const overLane = (e) => {
    const r = el.scroll.getBoundingClientRect();
    return e.clientX >= r.left && e.clientX <= r.right && e.clientY >= r.top && e.clientY <= r.bottom;
  };
  const move = (e) => {
    if (!ghost && Math.hypot(e.clientX - x0, e.clientY - y0) < DRAG_PX) return;
    if (!ghost) {
      ghost = document.createElement('div');
      ghost.className = 'ghost';
      ghost.textContent = `${item.id} ${item.in_s.toFixed(2)}–${item.out_s.toFixed(2)} s`;
      document.body.appendChild(ghost);
      document.body.classList.add('dragging');
    }
    ghost.style.left = `${e.clientX + 8}px`;
    ghost.style.top = `${e.clientY + 8}px`;
    if (overLane(e)) showMarker(insertionIndex(timeAt(e.clientX)));
    else el.marker.hidden = true;
  };
  const up = (e) => {
    source.removeEventListener('pointermove', move);
    source.removeEventListener('pointerup', up);
    source.removeEventListener('pointercancel', up);
    document.body.classList.remove('dragging');
    el.marker.hidden = true;
    if (!ghost) { audition(item); return; }
    ghost.remove();
    if (e.type === 'pointerup' && overLane(e)) addItem(item, insertionIndex(timeAt(e.clientX)));
  };
  source.addEventListener('pointermove', move);
  source.addEventListener('pointerup', up);
  source.addEventListener('pointercancel', up);
}

function addItem(item, index = S.parts.length) {
  const info = { ...item };
  const p = newPart(info, { in_s: item.in_s, out_s: item.out_s });
  S.parts.splice(index, 0, p);
  if (S.parts.length) S.parts[S.parts.length - 1].crossfade_s = 0;
  select(p.uid);
  changed();
  say(`${item.id} ${item.in_s.toFixed(2)}–${item.out_s.toFixed(2)} s placed as part ${index + 1}`);
}

/** Alt + wheel over a part: its gain in half decibels. */
function onGainWheel(ev) {
  if (!ev.altKey) return;
  const node = ev.target.closest('.part');
  if (!node) return;
  ev.preventDefault();
  const p = byUid(Number(node.dataset.uid));
  p.gain_db = Math.max(-96, Math.min(48, Math.round((p.gain_db + (ev.deltaY < 0 ? 0.5 : -0.5)) * 100) / 100));
  select(p.uid);
  changed({ fit: false });
}

function select(uid) {
  S.selected = uid;
  for (const n of el.lane.querySelectorAll('.part')) n.classList.toggle('selected', Number(n.dataset.uid) === uid);
  inspect();
}

function removeSelected() {
  const i = S.parts.findIndex((p) => p.uid === S.selected);
  if (i < 0) return;
  S.parts.splice(i, 1);
  if (S.parts.length) S.parts[S.parts.length - 1].crossfade_s = 0;
  S.selected = S.parts[Math.min(i, S.parts.length - 1)]?.uid ?? null;
  changed();
}

// ---- zoom and the playhead ---------------------------------------------------------------------

function zoom(factor, clientX = null) {
  const longest = Math.max(1, ...S.parts.map(partLen));
  const anchor = clientX === null ? (player.playing ? player.time : S.playhead) : timeAt(clientX);
  const screenX = anchor * S.pps - el.scroll.scrollLeft;
  S.pps = Math.max(MIN_PPS, Math.min(MAX_PPS, MAX_CANVAS_PX / longest, S.pps * factor));
  draw();
  el.scroll.scrollLeft = Math.max(0, anchor * S.pps - screenX);
  document.body.dataset.arrangePps = String(S.pps);
}

function fit() {
  const total = places().total;
  if (total <= 0) return;
  S.pps = Math.max(MIN_PPS, Math.min(MAX_PPS, (el.scroll.clientWidth - 40) / total));
  draw();
  el.scroll.scrollLeft = 0;
  document.body.dataset.arrangePps = String(S.pps);
}

function setPlayhead(t) {
  S.playhead = Math.max(0, Math.min(t, places().total));
  if (player.playing) player.seek(S.playhead);
  showPlayhead();
}

function tick() {
  if (!player.playing) return;
  showPlayhead();
  const x = player.time * S.pps;
  const view = el.scroll;
  if (x > view.scrollLeft + view.clientWidth - 40 || x < view.scrollLeft) view.scrollLeft = Math.max(0, x - 80);
  document.body.dataset.previewTime = player.time.toFixed(3);
  requestAnimationFrame(tick);
}

function showPlaying() {
  el.play.innerHTML = player.playing ? '&#10073;&#10073; Pause' : '&#9654; Play';
  document.body.dataset.previewPlaying = player.playing ? '1' : '0';
  if (!player.playing && S.playhead >= places().total - 1e-3) S.playhead = 0;
  showPlayhead();
}

async function togglePlay() {
  if (player.playing) {
    player.stop();
    S.playhead = player.time;
    showPlaying();
    return;
  }
  await play();
}

/** Mix the arrangement as it is now into the player (which keeps its place). */
async function remix() {
  const version = S.version;
  const top = { ...S.top };
  const mix = await buildMix(S.parts.map((p) => ({ url: p.info.audio_url, in_s: p.in_s, out_s: p.out_s,
    gain_db: p.gain_db, crossfade_s: p.crossfade_s })), top, rate());
  if (version !== S.version) return;  // changed again meanwhile: the next mix is on its way
  S.built = { ...mix, version };
  player.load(mix.audio, mix.sr);
  document.body.dataset.previewSeconds = mix.seconds.toFixed(4);
  say(mix.measured === null ? 'preview ready' : `preview: the mix at ${mix.measured.toFixed(1)} LUFS, `
    + `${mix.gainDb >= 0 ? '+' : ''}${mix.gainDb.toFixed(1)} dB to ${top.lufs} LUFS`);
}

/** Build the mix (when the arrangement changed since) and play it from the playhead. */
async function play() {
  if (!S.parts.length) { say('nothing to play: drag keepers onto the timeline'); return; }
  if (S.problem) { say(`cannot preview: ${S.problem.message}`, { error: true }); return; }
  try {
    if (!S.built || S.built.version !== S.version) {
      el.play.disabled = true;
      say('mixing the preview…', { sticky: true });
      await remix();
    }
    if (player.time >= places().total - 1e-3) S.playhead = 0;
    player.play(S.playhead);
    showPlaying();
    requestAnimationFrame(tick);
  } catch (err) {
    say(`cannot preview: ${err.message}`, { error: true });
  } finally {
    el.play.disabled = false;
  }
}

// ---- the bin -------------------------------------------------------------------------------------

let auditioning = null;

function audition(item) {
  if (!auditioning) {
    auditioning = document.createElement('audio');
    auditioning.preload = 'none';
    document.getElementById('arrange-view').appendChild(auditioning);
    auditioning.addEventListener('play', () => claim(auditioning));
    auditioning.addEventListener('timeupdate', () => {
      if (auditioning.dataset.end && auditioning.currentTime >= Number(auditioning.dataset.end)) auditioning.pause();
    });
  }
  const a = auditioning;
  if (!a.paused && a.dataset.key === item.key) { a.pause(); return; }
  if (!a.src.endsWith(item.audio_url)) a.src = item.audio_url;
  a.dataset.key = item.key;
  a.dataset.end = String(item.out_s);
  const start = () => { a.currentTime = item.in_s; a.play().catch((err) => say(`cannot play: ${err.message}`, { error: true })); };
  if (a.readyState >= 1) start(); else a.addEventListener('loadedmetadata', start, { once: true });
  a.load && a.readyState < 1 && a.load();
  say(`listening: ${item.id} ${clock(item.in_s)}–${clock(item.out_s)}`);
}

const binObserver = typeof IntersectionObserver === 'undefined' ? null : new IntersectionObserver((items) => {
  for (const it of items) if (it.isIntersecting) drawBinWave(it.target);
}, { rootMargin: '300px 0px' });

async function drawBinWave(node) {
  const item = S.bin.find((b) => b.key === node.dataset.key);
  const canvas = node.querySelector('canvas');
  if (!item || canvas.dataset.drawn) return;
  canvas.dataset.drawn = '1';
  const data = await loadWaveform(item.waveform_url).catch(() => null);
  if (!data) return;
  const w = canvas.width = canvas.clientWidth || 240;
  const h = canvas.height = 34;
  const ctx = canvas.getContext('2d');
  const perS = data.peakValues.length / data.duration;
  const span = item.out_s - item.in_s;
  ctx.fillStyle = `hsla(${hue(item.id)}, 45%, 68%, 0.9)`;
  for (let x = 0; x < w; x++) {
    const a = Math.floor((item.in_s + (x / w) * span) * perS);
    const b = Math.max(a + 1, Math.floor((item.in_s + ((x + 1) / w) * span) * perS));
    let v = 0;
    for (let k = a; k < b && k < data.peakValues.length; k++) v = Math.max(v, data.peakValues[k]);
    ctx.fillRect(x, h / 2 - v * (h / 2 - 1), 1, 2 * v * (h / 2 - 1));
  }
  for (const m of item.lineage || []) {
    const a = Math.max(m.clip_start_s, item.in_s);
    const b = Math.min(m.clip_end_s, item.out_s);
    if (b <= a) continue;
    ctx.fillStyle = trackColour(m.track, 0.9);
    ctx.fillRect(((a - item.in_s) / span) * w, h - 4, ((b - a) / span) * w, 4);
  }
}

function binItemNode(item) {
  const node = document.createElement('div');
  node.className = `bin-item kind-${item.kind}`;
  node.dataset.key = item.key;
  node.dataset.id = item.id;
  node.dataset.kind = item.kind;
  const what = item.kind === 'clip' ? 'whole clip' : item.source === 'you' ? 'your passage' : "curation's keeper";
  const tracks = [...new Set((item.lineage || []).map((m) => m.track))];
  node.innerHTML = `<div class="bin-title"><span class="mono"></span>${item.star ? '<span class="star on">&#9733;</span>' : ''}
    <span class="what"></span></div><canvas></canvas><div class="bin-meta"></div>`;
  node.querySelector('.mono').textContent = item.id;
  node.querySelector('.what').textContent = what;
  const meta = node.querySelector('.bin-meta');
  meta.textContent = `${clock(item.in_s)}–${clock(item.out_s)} (${(item.out_s - item.in_s).toFixed(1)} s)`
    + (item.rank ? ` · #${item.rank}` : '') + (item.temperature ? ` · T ${item.temperature}` : '');
  for (const t of tracks) {
    const chip = document.createElement('span');
    chip.className = 'lineage-chip';
    chip.style.background = trackColour(t, 0.9);
    chip.textContent = t;
    chip.title = `echoes ${t}`;
    meta.appendChild(chip);
  }
  node.title = `${item.id}: ${what}; drag onto the timeline, click to listen, double-click to add at the end`;
  node.addEventListener('pointerdown', (ev) => dragFromBin(ev, item));
  node.addEventListener('dblclick', () => addItem(item));
  return node;
}

async function loadBin() {
  try {
    const { keepers } = await getJSON(`/api/keepers${el.all.checked ? '?all=1' : ''}`);
    S.bin = keepers;
    const nodes = keepers.map(binItemNode);
    if (!nodes.length) {
      const empty = document.createElement('p');
      empty.className = 'empty';
      empty.textContent = el.all.checked ? 'No clips in the opened folders yet.'
        : 'No keepers yet: keep clips (P) or drag keeper passages on them in the clips view, or tick "all clips".';
      nodes.push(empty);
    }
    el.bin.replaceChildren(...nodes);
    if (binObserver) for (const n of el.bin.querySelectorAll('.bin-item')) binObserver.observe(n);
    else for (const n of el.bin.querySelectorAll('.bin-item')) drawBinWave(n);
    document.body.dataset.arrangeBin = String(keepers.length);
  } catch (err) {
    say(`cannot list the keepers: ${err.message}`, { error: true });
  }
}

// ---- pieces: open, save --------------------------------------------------------------------------

function cleanName(name) {
  return String(name || '').trim().replace(/\.toml$/i, '').replace(/[^A-Za-z0-9 _.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 100);
}

/** Where Save writes: the opened file while the name is its name, else NAME.toml in RUN/pieces. */
function saveAt() {
  const name = cleanName(el.name.value);
  if (S.opened && name === S.opened.name) return { ...S.opened, same: true };
  const t = S.opened ? { root: S.opened.root, folder: S.opened.path.split('/').slice(0, -1).join('/') } : S.targets[0];
  if (!t || !name) return null;
  return { root: t.root, path: `${t.folder ? `${t.folder}/` : ''}${name}.toml`, name, same: false };
}

function showWhere() {
  const at = saveAt();
  el.where.textContent = at ? `${at.root}/${at.path}${S.dirty ? ' · unsaved' : ''}` : '';
  el.where.title = 'where Save writes';
}

function payload() {
  const top = {};
  for (const [k, v] of Object.entries(S.top)) if (v !== null && v !== undefined && v !== '') top[k] = v;
  return {
    arrangement: {
      ...top,
      part: S.parts.map((p) => {
        const part = { in_s: p.in_s, gain_db: p.gain_db, crossfade_s: p.crossfade_s };
        if (p.out_s !== null) part.out_s = p.out_s;
        if (p.clip) part.clip = p.clip;
        if (p.file) part.file = p.file;
        if (p.note) part.note = p.note;
        return part;
      }),
    },
    clips_dir_at: S.clipsDirAt,
    header: S.header,
  };
}

/** Ask in the toolbar (no modal): resolves true when the musician says yes. */
function ask(message, yes) {
  return new Promise((resolve) => {
    const bar = el.ask;
    bar.innerHTML = '<span class="q"></span> <button type="button" class="yes"></button> <button type="button" class="no">Cancel</button>';
    bar.querySelector('.q').textContent = message;
    bar.querySelector('.yes').textContent = yes;
    bar.hidden = false;
    const done = (answer) => { bar.hidden = true; bar.replaceChildren(); resolve(answer); };
    bar.querySelector('.yes').addEventListener('click', () => done(true));
    bar.querySelector('.no').addEventListener('click', () => done(false));
  });
}

/** Saving over the piece that was opened: ask first if the file changed since (a hand edit, another tab). */
async function unchangedOnDisk(url, at) {
  let now = null;
  try {
    now = (await getJSON(url)).toml;
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 422) return true;  // gone (written afresh) or unreadable
    now = '';
  }
  if (S.opened.toml === undefined || now === S.opened.toml) return true;
  return ask(`${at.path} changed on disk since it was opened. Replace it?`, 'Replace');
}

function refusal(err) {
  // A 400 names the part and field: select the part and mark the field, in compose's words.
  const data = err.data || {};
  if (Number.isInteger(data.part) && S.parts[data.part]) select(S.parts[data.part].uid);
  S.problem = { message: err.message, part: Number.isInteger(data.part) ? data.part : null, field: data.field || null };
  draw();
  say(err.message, { error: true, sticky: true });
}

async function save(overwrite = false) {
  if (!token) { say('read-only: open the URL `inspire studio` printed (with ?token=...) to save', { error: true }); return; }
  const at = saveAt();
  if (!at) { say('give the piece a name first', { error: true }); el.name.focus(); return; }
  const url = `/api/pieces/${at.root}/${at.path.split('/').map(encodeURIComponent).join('/')}`;
  if (at.same && !overwrite && !(await unchangedOnDisk(url, at))) return;
  try {
    const piece = await putJSON(`${url}${overwrite || at.same ? '?overwrite=1' : ''}`, payload());
    S.opened = { root: piece.root, path: piece.path, name: piece.name, where: piece.where, toml: piece.toml };
    S.clipsDirAt = piece.clips_dir_at;
    S.top.clips_dir = piece.arrangement.clips_dir ?? null;
    piece.arrangement.part.forEach((part, i) => { if (S.parts[i]) S.parts[i].clip = part.clip; });
    S.dirty = false;
    saveDraft();
    showWhere();
    say(`saved ${piece.where}`);
    document.body.dataset.arrangeSaved = piece.path;
    loadPieces();
  } catch (err) {
    if (err instanceof ApiError && err.status === 409 && /overwrite it\?/.test(err.message)) {
      if (await ask(`${at.path} exists. Replace it?`, 'Replace')) await save(true);
      return;
    }
    if (err instanceof ApiError && err.status === 400) refusal(err);
    else say(`not saved: ${err.message}`, { error: true, sticky: true });
  }
}

async function loadPieces() {
  try {
    const data = await getJSON('/api/pieces');
    S.pieces = data.pieces;
    S.targets = data.targets;
    const chosen = S.opened ? `${S.opened.root}/${S.opened.path}` : '';
    const opts = ['<option value="">— new piece —</option>'];
    for (const p of data.pieces) {
      const value = `${p.root}/${p.path}`;
      const text = `${p.where}${p.seconds ? ` (${clock(p.seconds)})` : ''}${p.error ? ' — cannot render as is' : ''}`;
      opts.push(`<option value="${escapeHtml(value)}" title="${escapeHtml(p.error || '')}">${escapeHtml(text)}</option>`);
    }
    el.open.innerHTML = opts.join('');
    el.open.value = data.pieces.some((p) => `${p.root}/${p.path}` === chosen) ? chosen : '';
    if (!S.opened && !cleanName(el.name.value)) el.name.value = freshName();
    showWhere();
  } catch (err) {
    say(`cannot list the pieces: ${err.message}`, { error: true });
  }
}

function freshName() {
  const taken = new Set(S.pieces.map((p) => p.name));
  for (let k = 1; ; k++) if (!taken.has(`piece-${k}`)) return `piece-${k}`;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

async function openChosen() {
  const value = el.open.value;
  if (S.dirty && S.parts.length && !(await ask('Leave the unsaved arrangement?', 'Leave it'))) {
    el.open.value = S.opened ? `${S.opened.root}/${S.opened.path}` : '';
    return;
  }
  if (!value) { fresh(); return; }
  const [root, ...rest] = value.split('/');
  await openPiece(root, rest.join('/'));
}

function fresh() {
  player.stop();
  Object.assign(S, { parts: [], top: { ...DEFAULT_TOP }, clipsDirAt: null, header: '', opened: null, selected: null,
    playhead: 0, dirty: false, built: null, history: [], at: -1 });
  el.name.value = freshName();
  showSettings();
  changed();
  S.dirty = false;
  showWhere();
}

async function openPiece(root, path) {
  try {
    const piece = await getJSON(`/api/pieces/${root}/${path.split('/').map(encodeURIComponent).join('/')}`);
    load(piece);
    say(`opened ${piece.where}${piece.problem ? ` — inspire compose would refuse it as is: ${piece.problem.error}` : ''}`,
      { error: !!piece.problem, sticky: !!piece.problem });
  } catch (err) {
    say(`cannot open ${path}: ${err.message}`, { error: true, sticky: true });
  }
}

function load(piece) {
  player.stop();
  const doc = piece.arrangement;
  S.top = { ...DEFAULT_TOP };
  for (const k of Object.keys(DEFAULT_TOP)) if (doc[k] !== undefined) S.top[k] = doc[k];
  S.clipsDirAt = piece.clips_dir_at;
  S.header = piece.header || '';
  S.parts = doc.part.map((part, i) => newPart({ ...(piece.parts[i] || {}), id: (piece.parts[i] || {}).id || part.clip },
    { clip: part.clip, in_s: part.in_s ?? 0, out_s: part.out_s ?? null, gain_db: part.gain_db ?? 0,
      crossfade_s: part.crossfade_s ?? 0, note: (piece.notes || [])[i] || '' }));
  S.opened = { root: piece.root, path: piece.path, name: piece.name, where: piece.where, toml: piece.toml };
  S.selected = S.parts[0]?.uid ?? null;
  S.playhead = 0;
  S.built = null;
  S.history = [];
  S.at = -1;
  el.name.value = piece.name;
  el.open.value = `${piece.root}/${piece.path}`;
  showSettings();
  changed({ fit: false });
  S.dirty = false;
  saveDraft();
  showWhere();
  fit();
  if (piece.rendered) showRendered(piece.rendered, piece.where);
  else el.output.replaceChildren();
  document.body.dataset.arrangeOpened = piece.path;
}

// ---- the draft: nothing is lost when the tab closes ---------------------------------------------

function saveDraft() {
  if (!S.ready) return;
  try {
    localStorage.setItem(DRAFT_KEY + S.session, JSON.stringify({
      parts: S.parts.map(({ uid, ...p }) => p), top: S.top, clipsDirAt: S.clipsDirAt, header: S.header,
      opened: S.opened, name: el.name.value, dirty: S.dirty, pps: S.pps,
    }));
  } catch { /* private mode or full: the draft is a convenience */ }
}

function restoreDraft() {
  let draft = null;
  try { draft = JSON.parse(localStorage.getItem(DRAFT_KEY + S.session) || 'null'); } catch { draft = null; }
  if (!draft || !Array.isArray(draft.parts)) return false;
  S.parts = draft.parts.map((p) => ({ ...p, uid: ++uids }));
  S.top = { ...DEFAULT_TOP, ...draft.top };
  S.clipsDirAt = draft.clipsDirAt ?? null;
  S.header = draft.header || '';
  S.opened = draft.opened || null;
  S.pps = draft.pps || S.pps;
  el.name.value = draft.name || '';
  S.selected = S.parts[0]?.uid ?? null;
  S.history = [];
  S.at = -1;
  showSettings();
  changed({ fit: false });
  S.dirty = !!draft.dirty;
  showWhere();
  return true;
}

// ---- rendering with inspire compose --------------------------------------------------------------

function renderTarget() {
  const name = cleanName(el.name.value);
  const t = S.targets.find((x) => x.run) || S.targets[0];
  if (S.opened && S.opened.path.startsWith('pieces/') && S.targets.some((x) => x.root === S.opened.root)) {
    return { root: S.opened.root, name };
  }
  return t ? { root: t.root, name } : null;
}

async function renderPiece(overwrite = false) {
  if (!token) { say('read-only: open the URL `inspire studio` printed (with ?token=...) to render', { error: true }); return; }
  const t = renderTarget();
  if (!t || !t.name) { say('give the piece a name first', { error: true }); el.name.focus(); return; }
  const stems = el.stems.checked;
  let toml;
  try {
    toml = (await postJSON('/api/pieces/toml', { ...payload(), at: `${t.root}/pieces/${t.name}.toml` })).toml;
  } catch (err) {
    if (err instanceof ApiError && err.status === 400) refusal(err);
    else say(`cannot render: ${err.message}`, { error: true, sticky: true });
    return;
  }
  try {
    const { id } = await postJSON('/api/render', { arrangement: toml, name: t.name, run: t.root, overwrite, stems });
    S.job = { id, name: t.name, root: t.root, finished: false };
    localStorage.setItem(JOB_KEY + S.session, JSON.stringify(S.job));
    S.opened = { root: t.root, path: `pieces/${t.name}.toml`, name: t.name, where: `${t.root}/pieces/${t.name}.toml` };
    S.dirty = false;
    saveDraft();
    showWhere();
    draw();
    pollJob();
  } catch (err) {
    if (err instanceof ApiError && err.status === 409) {
      if (await ask(`${err.message.replace(/\s*\(.*$/, '')} — replace the piece?`, 'Replace')) await renderPiece(true);
      return;
    }
    if (err instanceof ApiError && err.status === 400) refusal(err);
    else say(`cannot render: ${err.message}`, { error: true, sticky: true });
  }
}

async function pollJob() {
  const job = S.job;
  if (!job) return;
  let state;
  try {
    state = await getJSON(`/api/jobs/${encodeURIComponent(job.id)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) { finishJob(); showJob({ state: 'failed', error: 'the studio no longer knows this render (restarted?)' }); return; }
    showJob({ state: 'unknown', error: err.message });
    setTimeout(pollJob, 4 * POLL_MS);
    return;
  }
  showJob(state);
  if (['done', 'failed', 'cancelled'].includes(state.state)) {
    finishJob();
    if (state.state === 'done') {
      document.body.dataset.arrangeRendered = job.name;
      try {
        const piece = await getJSON(`/api/pieces/${job.root}/pieces/${encodeURIComponent(job.name)}.toml`);
        if (piece.rendered) showRendered(piece.rendered, piece.where);
        loadPieces();
      } catch (err) {
        say(`rendered, but cannot read it back: ${err.message}`, { error: true });
      }
    }
    return;
  }
  setTimeout(pollJob, POLL_MS);
}

function finishJob() {
  if (S.job) S.job.finished = true;
  localStorage.removeItem(JOB_KEY + S.session);
  draw();
}

function showJob(state) {
  const out = el.output;
  let bar = out.querySelector('.render-job');
  if (!bar) {
    out.replaceChildren();
    bar = document.createElement('div');
    bar.className = 'render-job';
    bar.innerHTML = '<div class="rj-line"><span class="rj-state"></span> <button type="button" class="cancel">Cancel</button></div>'
      + '<progress max="1" value="0"></progress><div class="rj-error"></div>';
    bar.querySelector('.cancel').addEventListener('click', async () => {
      try { await postJSON(`/api/jobs/${encodeURIComponent(S.job.id)}/cancel`, {}); } catch (err) { say(err.message, { error: true }); }
    });
    out.appendChild(bar);
  }
  const running = !['done', 'failed', 'cancelled'].includes(state.state);
  bar.dataset.state = state.state;
  bar.querySelector('.rj-state').textContent = `render ${S.job ? S.job.name : ''}: ${state.state}`
    + (Number.isFinite(state.done) && Number.isFinite(state.total) && state.total ? ` (${state.done} of ${state.total})` : '');
  const progress = bar.querySelector('progress');
  if (Number.isFinite(state.done) && state.total) progress.value = state.done / state.total;
  else if (running) progress.removeAttribute('value');
  else progress.value = state.state === 'done' ? 1 : 0;
  bar.querySelector('.cancel').hidden = !running;
  bar.querySelector('.rj-error').textContent = state.error || '';
  document.body.dataset.arrangeJob = state.state;
}

function showRendered(r, where) {
  const out = el.output;
  const keep = out.querySelector('.render-job');
  out.replaceChildren(...(keep ? [keep] : []));
  const box = document.createElement('div');
  box.className = 'rendered';
  const loud = r.loudness || {};
  box.innerHTML = `<h3>Rendered</h3><div class="rmeta"></div><audio controls preload="none"></audio><div class="links"></div>`;
  box.querySelector('.rmeta').textContent = `${where.replace(/\.toml$/, '')} · ${clock(r.seconds)} · ${r.sample_rate} Hz`
    + (r.bit_depth ? `, ${r.bit_depth}-bit` : '') + (loud.integrated_lufs !== undefined && loud.integrated_lufs !== null
      ? ` · ${loud.integrated_lufs} LUFS, true peak ${loud.true_peak_dbtp} dBTP` : '') + (r.modified ? ` · ${r.modified.replace('T', ' ')}` : '');
  const audio = box.querySelector('audio');
  audio.src = r.audio_url;
  audio.addEventListener('play', () => claim(audio));
  const links = box.querySelector('.links');
  const link = (url, text) => {
    if (!url) return;
    const a = document.createElement('a');
    a.href = url;
    a.textContent = text;
    a.setAttribute('download', '');
    links.appendChild(a);
  };
  link(r.audio_url, 'piece');
  link(r.labels_url, 'Audacity labels');
  link(r.json_url, 'piece.json');
  (r.stems || []).forEach((u, i) => link(u, `stem ${i + 1}`));
  out.appendChild(box);
}

// ---- keys ----------------------------------------------------------------------------------------

function onKey(ev) {
  if (!visible()) return;
  if ((ev.ctrlKey || ev.metaKey) && ev.key.toLowerCase() === 's') { ev.preventDefault(); save(); return; }
  const inField = ev.target.closest && ev.target.closest('input, select, textarea');
  if ((ev.ctrlKey || ev.metaKey) && !inField && ev.key.toLowerCase() === 'z') {
    ev.preventDefault();
    undo(ev.shiftKey ? 1 : -1);
    return;
  }
  if ((ev.ctrlKey || ev.metaKey) && !inField && ev.key.toLowerCase() === 'y') { ev.preventDefault(); undo(1); return; }
  if (ev.target.closest && ev.target.closest('input, select, textarea, [contenteditable]')) return;
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  switch (ev.key) {
    case ' ': ev.preventDefault(); togglePlay(); break;
    case 'Delete': case 'Backspace': ev.preventDefault(); removeSelected(); break;
    case 'Home': ev.preventDefault(); setPlayhead(0); break;
    case '+': case '=': ev.preventDefault(); zoom(1.5); break;
    case '-': ev.preventDefault(); zoom(1 / 1.5); break;
    default:
  }
}

// ---- the view ------------------------------------------------------------------------------------

let started = null;

export function show() {
  started = started || init();
  return started.then(() => { draw(); loadBin(); });
}

async function init() {
  const folders = await getJSON('/api/folders');
  S.session = ` ${folders.roots.map((r) => r.path).join(' | ')}`;
  wire();
  showSettings();
  await loadPieces();
  restoreDraft();
  S.ready = true;
  check();
  draw();
  if (S.parts.length) fit();
  try {
    const job = JSON.parse(localStorage.getItem(JOB_KEY + S.session) || 'null');
    if (job && job.id) { S.job = job; pollJob(); }
  } catch { /* no job to resume */ }
  document.body.dataset.arrangeReady = '1';
}
