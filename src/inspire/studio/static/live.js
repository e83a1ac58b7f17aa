// The live view: the real-time engine of `inspire play` playing in the page. The server
// generates (studio/live.py, over a WebSocket), the page plays it through an AudioWorklet
// (live-worklet.js, a ring buffer) and sends back what it played, so the server keeps the
// page's buffer at its target and no further. The temperature knob, the pads, the keys and a
// MIDI controller send the same controls as `inspire play`'s keys, MIDI and OSC; Record keeps
// the take as a clip that `inspire generate RUN --again ID` renders again exactly.

import { clock, getJSON, say, token } from './api.js';
import { Knob } from './knob.js';

const NUDGE = 0.05;  // one key press, as inspire play
const SEND_MS = 30;  // at most one temperature message per this many ms while the knob turns
const TOUCH_MS = 800;  // after a touch, the knob shows the hand's value, not the engine's
const MIDI_KEY = 'inspire-live-midi';

const state = {
  options: null,
  ws: null,
  ctx: null,
  node: null,
  phase: 'idle',       // idle | loading | playing | stopping
  userStop: false,
  sr: 16000,
  target: 0.3,         // seconds the server keeps queued for us
  seq: -1,
  expect: 0,
  gaps: 0,
  played: 0,
  underruns: 0,
  buffered: 0,
  armed: false,        // Record pressed before Start: record from the first sample
  recording: false,
  recordSince: 0,
  lastTouch: 0,
  pendingTemp: null,
  tempTimer: null,
  pads: [],            // [{track, at}]
  label: 0,            // the steering label's row (0: none; i + 1: the run's labels[i])
  padsPlaying: {},     // what the engine primed: {"1": "track@s"}
  midi: { access: null, learning: false, cc: 1, channel: null, padNote: 36 },
  started: false,
  optionsSeen: false,
};
let knob = null;
let el = {};

// ---- the view ------------------------------------------------------------------------------

const MARKUP = `
  <form class="toolbar" id="live-setup" autocomplete="off">
    <label>run <select id="live-run"></select></label>
    <label>checkpoint <select id="live-checkpoint"></select></label>
    <label title="A value, or a lane in generate's grammar with breakpoints in seconds (0s:0.9,30s:1.2); the knob takes over when touched">
      temperature <input id="live-lane" value="1.0" size="14" spellcheck="false"></label>
    <label>seed <input id="live-seed" type="number" min="0" step="1" placeholder="random"></label>
    <label title="Audio queued between the server and the loudspeaker: more survives a busy machine or a network, less answers the knob sooner">
      buffer <select id="live-buffer">
        <option value="0.1">0.1 s</option><option value="0.2">0.2 s</option><option value="0.3">0.3 s</option>
        <option value="0.5">0.5 s</option><option value="1">1 s</option><option value="2">2 s</option></select></label>
    <label>precision <select id="live-precision"><option value="auto">auto</option><option value="fp32">fp32</option>
      <option value="int8">int8</option></select></label>
    <label class="check" title="Play even when the engine is measured slower than real time (with gaps)">
      <input id="live-slow" type="checkbox"> allow slow</label>
  </form>
  <div class="live-body">
    <div class="live-row">
      <div class="panel live-transport">
        <button type="button" id="live-start" class="big">&#9654; Start</button>
        <button type="button" id="live-record" class="record" aria-pressed="false">&#9679; Record</button>
        <div id="live-engine" class="muted"></div>
        <div id="live-message" class="live-message" role="status"></div>
      </div>
      <div class="panel live-knob">
        <div id="live-knob"></div>
        <div class="knob-caption">temperature</div>
        <div id="live-source" class="muted mono">&nbsp;</div>
        <div class="knob-range muted">range <input id="live-lo" type="number" step="0.05" min="0.05">
          &ndash; <input id="live-hi" type="number" step="0.05" min="0.05"></div>
      </div>
      <div class="panel live-meters">
        <div class="meter-line"><span class="muted">buffer</span>
          <div class="bar" title="audio waiting in the page, against the target"><div id="live-fill"></div></div>
          <span id="live-buffered" class="mono"></span></div>
        <dl>
          <dt>underruns</dt><dd id="live-underruns" class="mono">0</dd>
          <dt>engine</dt><dd id="live-speed" class="mono">&ndash;</dd>
          <dt>played</dt><dd id="live-clock" class="mono">0:00.0</dd>
          <dt>knob to sound</dt><dd id="live-latency" class="mono">&ndash;</dd>
          <dt>seed</dt><dd id="live-seed-shown" class="mono">&ndash;</dd>
        </dl>
      </div>
    </div>
    <div class="live-row">
      <div class="panel live-pads">
        <h3>Pads</h3>
        <div id="live-pad-buttons" class="pad-buttons"></div>
        <table class="pad-list"><tbody id="live-pad-list"></tbody></table>
        <button type="button" id="live-add-pad">+ pad</button>
        <p class="hint">A pad re-primes the stream from the moment of a training track just before its time
          (pad seconds: <input id="live-pad-seconds" type="number" step="0.5" min="0.1" value="2">).
          Pads are primed when playing starts.</p>
      </div>
      <div class="panel live-steer" id="live-steer" hidden>
        <h3>Steer</h3>
        <div id="live-steer-buttons" class="pad-buttons"></div>
        <p class="hint">This model was trained with labels: steer the stream towards one of your tracks (or
          sections) without interrupting it. Chosen before Start, it is the label the stream starts with;
          the take records every change.</p>
      </div>
      <div class="panel live-midi">
        <h3>MIDI</h3>
        <button type="button" id="live-midi-enable">Use MIDI</button>
        <button type="button" id="live-midi-learn">Learn knob</button>
        <div id="live-midi-status" class="muted"></div>
        <div id="live-midi-map" class="mono"></div>
      </div>
      <div class="panel live-takes">
        <h3>Takes</h3>
        <ul id="live-takes"><li class="muted">Takes recorded here are clips of the run (clips/takes).</li></ul>
      </div>
      <aside class="panel keys live-keys">
        <h3>Keys</h3>
        <dl>
          <dt><kbd>Space</kbd></dt><dd>start / stop</dd>
          <dt><kbd>R</kbd></dt><dd>record on / off</dd>
          <dt><kbd>&uarr;</kbd> <kbd>+</kbd></dt><dd>hotter (${NUDGE})</dd>
          <dt><kbd>&darr;</kbd> <kbd>-</kbd></dt><dd>cooler</dd>
          <dt><kbd>1</kbd>&ndash;<kbd>9</kbd></dt><dd>pads</dd>
          <dt><kbd>0</kbd></dt><dd>silence (reset)</dd>
          <dt>knob</dt><dd>drag, wheel; focused: arrows 0.01, <kbd>Shift</kbd> 0.1, double-click 1.0</dd>
        </dl>
      </aside>
    </div>
  </div>`;

export function init(section) {
  if (state.started) return;
  state.started = true;
  section.innerHTML = MARKUP;
  for (const node of section.querySelectorAll('[id]')) el[node.id.replace(/^live-/, '').replace(/-(.)/g, (_, c) => c.toUpperCase())] = node;
  el.section = section;
  knob = new Knob(el.knob, { min: 0.5, max: 1.5, value: 1.0, home: 1.0, label: 'temperature', onInput: onKnob });
  el.start.addEventListener('click', () => (state.phase === 'idle' ? start() : stop()));
  el.record.addEventListener('click', toggleRecord);
  el.addPad.addEventListener('click', () => { addPad(); renderPads(); });
  el.run.addEventListener('change', () => { fillRun(); renderPads(); });
  el.lo.addEventListener('change', setRange);
  el.hi.addEventListener('change', setRange);
  el.lane.addEventListener('change', () => {
    const v = Number(el.lane.value);
    if (el.lane.value.trim() && Number.isFinite(v) && v > 0) knob.set(v);
  });
  el.setup.addEventListener('submit', (ev) => ev.preventDefault());
  el.midiEnable.addEventListener('click', enableMidi);
  el.midiLearn.addEventListener('click', learnMidi);
  loadMidiMap();
  if (!token) {
    message('Playing live needs the session token: open the URL `inspire studio` printed (it ends with ?token=...).', true);
    el.start.disabled = true;
    el.record.disabled = true;
  }
  update();
}

export async function show() {
  if (state.phase !== 'idle' && state.options) return;
  const data = await getJSON('/api/live');
  const before = el.run.value;
  state.options = data;
  el.run.replaceChildren(...data.runs.map((r) => new Option(r.name, r.key)));
  if (before && data.runs.some((r) => r.key === before)) el.run.value = before;
  if (!data.runs.length) {
    message('No run folder is open: start the studio on a run (inspire studio RUN_DIR) to play it live.', true);
    el.start.disabled = true;
  }
  if (!state.optionsSeen) {
    state.optionsSeen = true;
    const [lo, hi] = data.defaults.knob;
    el.lo.value = lo;
    el.hi.value = hi;
    el.buffer.value = String(data.defaults.buffer);
    el.padSeconds.value = data.defaults.pad_seconds;
    state.midi.padNote = data.defaults.midi_pad_note;
    fillRun();
  } else {
    fillCheckpoints();
  }
  if (data.playing && state.phase === 'idle') message('Another page of this studio is playing live.');
  renderPads();
  update();
}

function currentRun() {
  return state.options && state.options.runs.find((r) => r.key === el.run.value);
}

function fillCheckpoints() {
  const run = currentRun();
  if (!run) return;
  const before = el.checkpoint.value;
  const opts = [];
  const chosen = run.chosen && run.checkpoints.find((c) => c.name === run.chosen);
  opts.push(new Option(chosen ? `chosen: step ${chosen.step}` : 'best', ''));
  if (chosen || !run.best) opts.push(new Option('best', 'best'));
  opts.push(new Option('last', 'last'));
  for (const c of run.checkpoints) {
    const tags = [c.best ? 'best' : '', c.last ? 'last' : ''].filter(Boolean).join(', ');
    opts.push(new Option(`step ${c.step}${tags ? ` (${tags})` : ''}`, c.name));
  }
  el.checkpoint.replaceChildren(...opts);
  if ([...el.checkpoint.options].some((o) => o.value === before)) el.checkpoint.value = before;
}

function fillRun() {
  const run = currentRun();
  if (!run) return;
  fillCheckpoints();
  state.label = 0;
  state.pads = [];
  for (const t of run.tracks.slice(0, 4)) state.pads.push({ track: t.id, at: Math.round(t.seconds * 5) / 10 });
  if (run.tracks_error) message(`pads: ${run.tracks_error}`, true);
}

// ---- pads ----------------------------------------------------------------------------------

function addPad() {
  const run = currentRun();
  if (!run || !run.tracks.length || state.pads.length >= state.options.defaults.max_pads) return;
  const t = run.tracks[state.pads.length % run.tracks.length];
  state.pads.push({ track: t.id, at: Math.round(t.seconds * 5) / 10 });
}

function renderPads() {
  const run = currentRun();
  const editing = state.phase === 'idle';
  el.padList.replaceChildren();
  state.pads.forEach((pad, i) => {
    const tr = document.createElement('tr');
    tr.innerHTML = `<td class="n">${i + 1}</td><td><select></select></td>
      <td>at <input type="number" step="0.1" min="0"> s</td><td><button type="button" title="remove this pad">&times;</button></td>`;
    const sel = tr.querySelector('select');
    for (const t of (run ? run.tracks : [])) sel.appendChild(new Option(`${t.name} (${t.seconds.toFixed(1)} s)`, t.id));
    sel.value = pad.track;
    const at = tr.querySelector('input');
    at.value = pad.at;
    sel.addEventListener('change', () => { pad.track = sel.value; renderPadButtons(); });
    at.addEventListener('change', () => { pad.at = Number(at.value); renderPadButtons(); });
    tr.querySelector('button').addEventListener('click', () => { state.pads.splice(i, 1); renderPads(); });
    for (const c of tr.querySelectorAll('select, input, button')) c.disabled = !editing;
    el.padList.appendChild(tr);
  });
  el.addPad.disabled = !editing || !run || !run.tracks.length;
  renderPadButtons();
  renderSteer();
}

function padSpecs() {
  return state.pads.map((p) => `${p.track}@${p.at}`);
}

function renderPadButtons() {
  const playing = state.phase === 'playing';
  const run = currentRun();
  const names = new Map((run ? run.tracks : []).map((t) => [t.id, t.name.replace(/\.[^.]+$/, '')]));
  const label = (spec) => {
    const at = spec.lastIndexOf('@');
    return `${names.get(spec.slice(0, at)) || spec.slice(0, at)} @ ${spec.slice(at + 1)} s`;
  };
  const specs = playing ? Object.entries(state.padsPlaying).map(([n, s]) => [Number(n), label(s)])
    : padSpecs().map((s, i) => [i + 1, label(s)]);
  const buttons = [[0, 'silence']].concat(specs).map(([n, text]) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'pad';
    b.dataset.pad = n;
    b.innerHTML = `<strong>${n}</strong><span></span>`;
    b.querySelector('span').textContent = text;
    b.disabled = !playing;
    b.addEventListener('click', () => pad(n));
    return b;
  });
  el.padButtons.replaceChildren(...buttons);
}

// ---- steering (a model trained with labels) ------------------------------------------------

function renderSteer() {
  const run = currentRun();
  const labels = (run && run.labels) || [];
  el.steer.hidden = !labels.length;
  const buttons = ['none'].concat(labels).map((name, row) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'pad steer';
    b.dataset.label = row;
    b.textContent = name;
    b.classList.toggle('active', row === state.label);
    b.setAttribute('aria-pressed', String(row === state.label));
    b.addEventListener('click', () => steer(row));
    return b;
  });
  el.steerButtons.replaceChildren(...buttons);
}

function steer(row) {
  if (state.phase === 'playing') send({ type: 'set', control: 'label', value: row });
  else if (state.phase !== 'idle') return;
  state.label = row;
  renderSteer();
}

function pad(n) {
  if (state.phase !== 'playing') return;
  if (n === 0) send({ type: 'set', control: 'reset', value: 0 });
  else if (String(n) in state.padsPlaying) send({ type: 'set', control: 'pad', value: n });
  else return;
  const b = el.padButtons.querySelector(`[data-pad="${n}"]`);
  if (b) { b.classList.add('hit'); setTimeout(() => b.classList.remove('hit'), 150); }
}

// ---- the knob ------------------------------------------------------------------------------

function setRange() {
  const lo = Number(el.lo.value);
  const hi = Number(el.hi.value);
  if (!(lo > 0 && hi > lo)) {
    message(`knob range: need 0 < low < high, got ${el.lo.value} – ${el.hi.value}`, true);
    return;
  }
  knob.setRange(lo, hi);
  showMidiMap();
}

function onKnob(v) {
  setTemperature(v);
}

/** The knob, a MIDI controller or a key asks for temperature v. */
function setTemperature(v) {
  state.lastTouch = performance.now();
  knob.set(v);
  if (state.phase === 'idle') {
    el.lane.value = v.toFixed(3).replace(/0+$/, '').replace(/\.$/, '');  // the starting temperature
    return;
  }
  state.pendingTemp = v;
  if (state.tempTimer === null) {
    state.tempTimer = setTimeout(() => {
      state.tempTimer = null;
      if (state.pendingTemp !== null && state.phase === 'playing') {
        send({ type: 'set', control: 'temperature', value: Number(state.pendingTemp.toFixed(4)) });
      }
      state.pendingTemp = null;
    }, SEND_MS);
  }
}

function nudge(d) {
  if (state.phase !== 'playing') { setTemperature(Math.max(0.05, knob.value + d)); return; }
  state.lastTouch = performance.now();
  knob.set(Math.max(0.05, knob.value + d));
  send({ type: 'set', control: 'nudge', value: d });
}

// ---- playing -------------------------------------------------------------------------------

function message(text, error = false) {
  el.message.textContent = text;
  el.message.classList.toggle('error', error);
}

function send(body) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(body));
}

function connect() {
  if (state.ws && state.ws.readyState <= WebSocket.OPEN) {
    return state.ws.readyState === WebSocket.OPEN ? Promise.resolve(state.ws) : state.wsOpening;
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/api/live/ws?token=${encodeURIComponent(token)}`);
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  state.wsOpening = new Promise((resolve, reject) => {
    ws.addEventListener('open', () => resolve(ws), { once: true });
    ws.addEventListener('close', () => reject(new Error('the studio refused the live connection (is the token right?)')),
      { once: true });
  });
  ws.addEventListener('message', (ev) => {
    if (typeof ev.data === 'string') onJSON(JSON.parse(ev.data));
    else onFrame(ev.data);
  });
  ws.addEventListener('close', () => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (state.phase !== 'idle') {
      message('the live connection closed (was the studio stopped?)', true);
      finish(false);
    }
  });
  return state.wsOpening;
}

async function audio(rate) {
  if (state.ctx && state.ctx.sampleRate !== rate) {
    await state.ctx.close();
    state.ctx = null;
  }
  if (!state.ctx) {
    const ctx = new AudioContext({ sampleRate: rate, latencyHint: 'interactive' });
    await ctx.audioWorklet.addModule('/static/live-worklet.js');
    state.ctx = ctx;
  }
  await state.ctx.resume();
  if (state.node) { state.node.port.onmessage = null; state.node.disconnect(); }
  const target = Math.round(state.target * rate);
  state.node = new AudioWorkletNode(state.ctx, 'inspire-live', {
    numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1],
    processorOptions: { capacity: target + 4 * rate, prebuffer: Math.round(target * 0.6), rebuffer: Math.round(target * 0.6) },
  });
  state.node.port.onmessage = (ev) => onReport(ev.data);
  state.node.connect(state.ctx.destination);
}

async function start() {
  const run = currentRun();
  if (!run || state.phase !== 'idle') return;
  const seed = el.seed.value.trim();
  state.target = Number(el.buffer.value);
  state.phase = 'loading';
  state.userStop = false;
  Object.assign(state, { seq: -1, expect: 0, gaps: 0, played: 0, underruns: 0, buffered: 0, recording: false });
  update();
  message(`loading ${run.name} (the first time also compiles the engine: a few seconds)…`);
  try {
    await audio(run.sample_rate || 16000);  // in the click: browsers start sound only after a gesture
    await connect();
  } catch (err) {
    message(err.message, true);
    state.phase = 'idle';
    update();
    return;
  }
  send({
    type: 'start', run: run.key, checkpoint: el.checkpoint.value || null, temperature: el.lane.value.trim() || '1.0',
    seed: seed === '' ? null : Number(seed), pads: padSpecs(), pad_seconds: Number(el.padSeconds.value),
    precision: el.precision.value, allow_slow: el.slow.checked, buffer: state.target, record: state.armed,
    device_rate: state.ctx.sampleRate, steer: state.label ? run.labels[state.label - 1] : null,
  });
}

function stop() {
  if (state.phase === 'playing') {
    state.userStop = true;
    state.phase = 'stopping';
    send({ type: 'stop' });
    if (state.node) state.node.port.postMessage({ flush: true });  // silence now
    update();
  }
}

function toggleRecord() {
  if (!token) return;
  if (state.phase === 'idle') {
    state.armed = !state.armed;  // record from the first sample
    update();
  } else if (state.phase === 'playing') {
    send({ type: 'record', on: !state.recording });
  }
}

function finish(drain) {
  state.phase = 'idle';
  state.recording = false;
  state.armed = false;
  if (state.node) state.node.port.postMessage(drain ? { ending: true } : { flush: true });
  renderPads();
  update();
}

async function onJSON(m) {
  switch (m.type) {
    case 'loading':
      break;
    case 'ready':
      state.sr = m.sample_rate;
      if (state.ctx.sampleRate !== m.sample_rate) await audio(m.sample_rate);
      state.phase = 'playing';
      state.padsPlaying = m.pads;
      state.label = m.label || 0;
      renderSteer();
      state.recording = m.recording;
      if (m.recording) state.recordSince = performance.now();
      state.engine = m.engine;
      el.seedShown.textContent = String(m.seed);
      el.engine.textContent = `${m.engine}, measured ${m.measured_speed ? m.measured_speed.toFixed(1) : '?'}× real time`
        + ` · checkpoint step ${m.checkpoint.step}`;
      message((m.notes || []).filter((n) => /warning|int8/.test(n)).join('; '));  // the speed is shown above
      if (performance.now() - state.lastTouch > TOUCH_MS) knob.set(m.temperature);
      renderPads();
      break;
    case 'stats':
      state.speed = m.speed;
      if (m.speed) {
        el.speed.textContent = `${m.speed.toFixed(1)}× real time`;
        el.speed.classList.toggle('bad', m.speed < 1);  // slower than the sound: underruns will follow
      }
      if (performance.now() - state.lastTouch > TOUCH_MS) knob.set(m.temperature);
      el.source.textContent = `engine at ${m.temperature.toFixed(3)}`;
      el.section.dataset.temperature = String(m.temperature);
      break;
    case 'recording':
      state.recording = m.on;
      if (m.on) state.recordSince = performance.now();
      break;
    case 'take':
      addTake(m);
      break;
    case 'stopped':
      finish(!state.userStop);
      break;
    case 'error':
      message(m.error, true);
      say(m.error, { error: true });
      if (state.phase === 'loading') finish(false);
      break;
    default:
      break;
  }
  update();
}

function onFrame(buf) {
  const dv = new DataView(buf);
  const seq = dv.getUint32(0, true);
  const n = dv.getUint32(4, true);
  const pos = dv.getFloat64(8, true);
  if (seq !== state.seq + 1 || pos !== state.expect) state.gaps += 1;
  state.seq = seq;
  state.expect = pos + n;
  if (!state.node || state.phase === 'stopping') return;
  const samples = new Float32Array(buf, 16, n);
  state.node.port.postMessage({ samples }, [buf]);
}

function onReport(r) {
  state.played = r.played;
  state.underruns = r.underruns;
  state.buffered = r.buffered;
  if (state.phase === 'playing') send({ type: 'ack', played: r.played, underruns: r.underruns });
  const ds = el.section.dataset;
  ds.played = String(r.played);
  ds.underruns = String(r.underruns);
  ds.buffered = String(r.buffered);
  ds.gaps = String(state.gaps);
  ds.dropped = String(r.dropped);
  meters();
}

function meters() {
  const sr = state.ctx ? state.ctx.sampleRate : state.sr;
  const frac = state.target > 0 ? Math.min(1, state.buffered / (state.target * sr)) : 0;
  el.fill.style.width = `${(100 * frac).toFixed(1)}%`;
  el.fill.classList.toggle('low', state.phase === 'playing' && frac < 0.25);
  el.buffered.textContent = `${(state.buffered / sr).toFixed(2)} / ${state.target.toFixed(2)} s`;
  el.underruns.textContent = String(state.underruns);
  el.underruns.classList.toggle('bad', state.underruns > 0);
  el.clock.textContent = clock(state.played / sr);
  const latency = state.ctx ? (state.ctx.baseLatency || 0) + (state.ctx.outputLatency || 0) : 0;
  el.latency.textContent = state.phase === 'playing' ? `≈ ${(state.target + 0.1 + latency).toFixed(2)} s` : '–';
  if (state.recording) {
    el.record.querySelector('.t').textContent = clock((performance.now() - state.recordSince) / 1000);
  }
}

function update() {
  if (!el.start) return;
  const p = state.phase;
  el.section.dataset.state = p;
  el.start.innerHTML = p === 'idle' ? '&#9654; Start' : p === 'loading' ? 'Loading…' : '&#9632; Stop';
  el.start.disabled = !token || p === 'loading' || p === 'stopping' || !currentRun();
  el.start.classList.toggle('on', p === 'playing');
  const rec = p === 'idle' ? state.armed : state.recording;
  el.record.classList.toggle('on', state.recording);
  el.record.classList.toggle('armed', p === 'idle' && state.armed);
  el.record.setAttribute('aria-pressed', String(rec));
  el.record.innerHTML = state.recording ? '&#9679; Recording <span class="t"></span>'
    : p === 'idle' && state.armed ? '&#9679; Record from the start' : '&#9679; Record';
  el.record.disabled = !token || p === 'loading' || p === 'stopping';
  for (const c of el.setup.querySelectorAll('select, input')) c.disabled = p !== 'idle';
  el.padSeconds.disabled = p !== 'idle';
  const tab = document.getElementById('tab-live');
  if (tab) tab.classList.toggle('live-on', p === 'playing');
  meters();
}

function addTake(m) {
  const list = el.takes;
  if (list.querySelector('.muted')) list.replaceChildren();
  const li = document.createElement('li');
  li.dataset.id = m.id;
  li.innerHTML = '<strong class="mono"></strong> <span class="muted"></span> · <a href="#clips">in the clips view</a>'
    + '<div><code></code></div>';
  li.querySelector('strong').textContent = m.id;
  li.querySelector('span').textContent = `${m.seconds.toFixed(1)} s` + (m.start_s ? ` from ${clock(m.start_s)}` : '');
  li.querySelector('code').textContent = m.again;
  list.prepend(li);
  say(`take ${m.id} recorded (${m.seconds.toFixed(1)} s)`);
}

// ---- keys ----------------------------------------------------------------------------------

export function onKey(ev) {
  const t = ev.target;
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  if (t && t.matches('input, select, textarea')) return;  // the knob keeps its own keys (arrows, pages)
  const k = ev.key;
  if (k === ' ' && t && t.matches('button')) return;  // the focused button's own click
  if (k === ' ') { ev.preventDefault(); if (state.phase === 'idle') start(); else stop(); return; }
  if (k === 'r' || k === 'R') { toggleRecord(); return; }
  if (k === 'ArrowUp' || k === '+' || k === '=') { ev.preventDefault(); nudge(NUDGE); return; }
  if (k === 'ArrowDown' || k === '-' || k === '_') { ev.preventDefault(); nudge(-NUDGE); return; }
  if (/^[0-9]$/.test(k)) pad(Number(k));
}

// ---- MIDI (Web MIDI: Chromium, Edge, Firefox with permission) -------------------------------

function loadMidiMap() {
  try {
    const saved = JSON.parse(localStorage.getItem(MIDI_KEY) || 'null');
    if (saved && Number.isInteger(saved.cc)) {
      state.midi.cc = saved.cc;
      state.midi.channel = Number.isInteger(saved.channel) ? saved.channel : null;
    }
  } catch { /* a broken entry: the defaults */ }
  showMidiMap();
}

function showMidiMap() {
  if (!el.midiMap) return;
  const m = state.midi;
  el.midiMap.textContent = `CC ${m.cc}${m.channel ? ` ch ${m.channel}` : ''} → temperature ${knob.min}–${knob.max}; `
    + `notes from ${m.padNote} → pads 0, 1, 2…`;
}

async function enableMidi() {
  if (state.midi.access) return true;
  if (!navigator.requestMIDIAccess) {
    el.midiStatus.textContent = 'This browser has no Web MIDI (Chromium and Edge do).';
    return false;
  }
  try {
    const access = await navigator.requestMIDIAccess();
    state.midi.access = access;
    const bind = () => {
      const names = [];
      for (const input of access.inputs.values()) {
        input.onmidimessage = (ev) => midiMessage(ev.data);
        names.push(input.name);
      }
      el.midiStatus.textContent = names.length ? `listening to ${names.join(', ')}` : 'no MIDI inputs connected';
    };
    access.onstatechange = bind;
    bind();
    el.midiEnable.disabled = true;
    return true;
  } catch (err) {
    el.midiStatus.textContent = `MIDI refused: ${err.message || err}`;
    return false;
  }
}

async function learnMidi() {
  state.midi.learning = true;
  el.midiLearn.classList.add('on');
  el.midiStatus.textContent = 'move a knob on the controller…';
  await enableMidi();
  if (state.midi.learning) el.midiStatus.textContent = 'move a knob on the controller…';
}

/** One MIDI message (status, data1, data2): what inspire play's MidiMap does with it. */
export function midiMessage(data) {
  const [status, d1, d2] = data;
  const type = status & 0xf0;
  const channel = (status & 0x0f) + 1;
  const m = state.midi;
  if (type === 0xb0) {
    if (m.learning) {
      m.learning = false;
      m.cc = d1;
      m.channel = channel;
      el.midiLearn.classList.remove('on');
      localStorage.setItem(MIDI_KEY, JSON.stringify({ cc: m.cc, channel: m.channel }));
      el.midiStatus.textContent = `learned: CC ${d1} on channel ${channel}`;
      showMidiMap();
      return;
    }
    if (d1 === m.cc && (m.channel === null || channel === m.channel)) {
      setTemperature(knob.min + (knob.max - knob.min) * Math.min(Math.max(d2, 0), 127) / 127);
    }
  } else if (type === 0x90 && d2 > 0 && d1 >= m.padNote) {
    pad(d1 - m.padNote);
  }
}
