// The generate view: the form of `inspire generate` (run, checkpoint, clips, length, seed, the
// temperature curves drawn by hand, min-p and top-p truncation, the collapse guard, steering curves
// over a labelled model's labels with guidance, a prime from a moment of the corpus), and the jobs: progress,
// ETA, cancel, resume, and the clips of each job. The jobs run on the server (studio/jobs.py) as
// the command line itself; every tab polls the same list.

import WaveSurfer from './vendor/wavesurfer/wavesurfer.esm.js';
import RegionsPlugin from './vendor/wavesurfer/plugins/regions.esm.js';
import { ApiError, clock, getJSON, postJSON, say, token } from './api.js';
import { CurveEditor } from './curve.js';
import { SpecList, SteerEditor } from './steer.js';
import { loadWaveform } from './wave.js';

const COLOURS = ['#ff9f5a', '#7cc4ff', '#5fd38d', '#d98cff', '#ffd166', '#ff6b6b'];
const POLL_ACTIVE_MS = 1000;
const POLL_IDLE_MS = 5000;
const PRIME_COLOUR = 'rgba(124, 196, 255, 0.30)';

const state = {
  ready: false,
  runs: [],
  editors: [],
  steers: [],        // SteerEditor per steering curve (a labelled model only)
  truncation: {},    // min_p, top_p: SpecList
  cards: new Map(),  // job id -> JobCard
  tracks: null,      // {run, tracks, sample_rate}
  trackWave: null,   // {ws, regions, region, track}
  timer: null,
  primeAudio: null,
};

const $ = (id) => document.getElementById(id);
const form = () => $('gen-form');

// ---- the form ------------------------------------------------------------------------------

function seconds() {
  const v = Number($('g-seconds').value);
  return v > 0 && Number.isFinite(v) ? v : 30;
}

/** "all 8 clips", "clips 1, 3" (clips take the curves in turn: `stride` clips per turn). */
function clipsOf(i, k, stride) {
  const n = Math.max(1, Math.round(Number($('g-n').value)) || 1);
  if (k === 1) return `all ${n} clips`;
  const mine = [];
  for (let c = 0; c < n; c++) if (Math.floor(c / stride) % k === i) mine.push(c + 1);
  const shown = mine.length > 4 ? `${mine.slice(0, 3).join(', ')} … ${mine[mine.length - 1]}` : mine.join(', ');
  return mine.length ? `clip${mine.length > 1 ? 's' : ''} ${shown}` : 'no clip (more curves than clips)';
}

function relabelCurves() {
  const k = state.editors.length;
  state.editors.forEach((e, i) => e.setLabel(k === 1 ? 'curve' : `curve ${i + 1}`, clipsOf(i, k, 1), { removable: k > 1 }));
  // The sweep's order (inspire generate): temperature fastest, then min-p, top-p, steering.
  const stride = k * Object.values(state.truncation).reduce((a, l) => a * Math.max(1, l.specs.length), 1);
  const m = state.steers.length;
  state.steers.forEach((e, i) => e.setLabel(m === 1 ? 'steering' : `steering ${i + 1}`, clipsOf(i, m, stride), { removable: m > 1 }));
}

function addCurve(spec) {
  const i = state.editors.length;
  const editor = new CurveEditor($('g-curves'), {
    spec,
    seconds: seconds(),
    colour: COLOURS[i % COLOURS.length],
    onRemove: (e) => {
      if (state.editors.length === 1) return;
      state.editors = state.editors.filter((x) => x !== e);
      e.el.remove();
      relabelCurves();
    },
  });
  state.editors.push(editor);
  relabelCurves();
  return editor;
}

function addSteer(spec) {
  const editor = new SteerEditor($('g-steers'), {
    spec,
    run: () => $('g-run').value || null,
    seconds: seconds(),
    labels: (currentRun() && currentRun().labels) || [],
    onRemove: (e) => {
      if (state.steers.length === 1) return;
      state.steers = state.steers.filter((x) => x !== e);
      e.el.remove();
      relabelCurves();
    },
  });
  state.steers.push(editor);
  relabelCurves();
  return editor;
}

/** The Steer section shows only for a model trained with labels (RUN/config.json's). */
function showSteer() {
  const run = currentRun();
  const labels = (run && run.labels) || [];
  const box = $('g-steer-section');
  box.hidden = !labels.length;
  box.dataset.labels = JSON.stringify(labels);
  if (!labels.length) return;
  if (!state.steers.length) addSteer('');
  for (const e of state.steers) {
    e.setLabels(labels);
    if (e.spec) e.check(e.spec);  // another run: its labels judge the text
  }
}

function fillRuns() {
  const select = $('g-run');
  const before = select.value;
  select.replaceChildren(...state.runs.map((r) => new Option(r.name, r.key)));
  if (state.runs.some((r) => r.key === before)) select.value = before;
  fillCheckpoints();
  showSteer();
}

function currentRun() {
  return state.runs.find((r) => r.key === $('g-run').value) || null;
}

function fillCheckpoints() {
  const run = currentRun();
  const select = $('g-checkpoint');
  const before = select.dataset.user ? select.value : null;
  const options = [];
  if (run) {
    const chosen = run.chosen;
    for (const ck of run.checkpoints.filter((c) => c.file)) {
      const tags = [ck.best ? 'best' : '', ck.last ? 'last' : '', ck.name === chosen ? 'chosen in Runs' : '']
        .filter(Boolean).join(', ');
      options.push(new Option(`step ${ck.step}${tags ? ` (${tags})` : ''}`, String(ck.step)));
    }
    options.push(new Option('best', 'best'), new Option('last', 'last'));
    select.replaceChildren(...options);
    const chosenStep = chosen ? String(Number(chosen.replace('step-', ''))) : null;
    if (before && options.some((o) => o.value === before)) select.value = before;
    else if (chosenStep && options.some((o) => o.value === chosenStep)) select.value = chosenStep;
    else select.value = 'best';
  } else {
    select.replaceChildren(new Option('(open a run folder)', ''));
  }
}

function clearErrors() {
  for (const el of document.querySelectorAll('#gen-form .field-error')) el.textContent = '';
  for (const el of document.querySelectorAll('#gen-form .invalid')) el.classList.remove('invalid');
}

/** Show a refusal next to the field it names (the server's {"error", "field", "index"}). */
function showError(err) {
  const data = (err instanceof ApiError && err.data) || {};
  const field = data.field || '';
  if (field === 'temperature' && Number.isInteger(data.index) && state.editors[data.index]) {
    state.editors[data.index].showError(err.message);
    return;
  }
  if (state.truncation[field]) {
    state.truncation[field].showError(Number.isInteger(data.index) ? data.index : 0, err.message);
    return;
  }
  const steers = state.steers.filter((e) => e.spec);
  if (field === 'steer' && Number.isInteger(data.index) && steers[data.index]) {
    steers[data.index].showError(err.message);
    return;
  }
  const slot = document.querySelector(`#gen-form .field-error[data-error-for="${field}"]`)
    || document.querySelector('#gen-form .field-error[data-error-for=""]');
  slot.textContent = err.message;
  const input = document.querySelector(`#gen-form [data-field="${field}"]`);
  if (input) input.classList.add('invalid');
}

function numberOrNull(id) {
  const raw = $(id).value.trim();
  return raw === '' ? null : Number(raw);
}

function body() {
  const b = {
    run: $('g-run').value || null,
    checkpoint: $('g-checkpoint').value || null,
    n: numberOrNull('g-n'),
    seconds: numberOrNull('g-seconds'),
    temperature: state.editors.map((e) => e.spec),
  };
  for (const [key, list] of Object.entries(state.truncation)) if (list.specs.length) b[key] = list.specs;
  b.guard = $('g-guard').checked;
  if (!$('g-steer-section').hidden) {
    const steers = state.steers.map((e) => e.spec).filter(Boolean);
    if (steers.length) b.steer = steers;
    const guidance = numberOrNull('g-guidance');
    if (guidance !== null) b.guidance = guidance;
  }
  const seed = numberOrNull('g-seed');
  if (seed !== null) b.seed = seed;
  const prime = document.querySelector('input[name="g-prime"]:checked').value;
  if (prime === 'corpus') b.prime = 'corpus';
  if (prime === 'track') {
    const w = state.trackWave;
    const tracks = (state.tracks && state.tracks.tracks) || [];
    // The name reads better in the command; the id when two tracks share a name.
    const named = w && tracks.filter((t) => t.name === w.track.name).length === 1;
    b.prime = { track: w ? (named ? w.track.name : w.track.id) : $('g-track').value,
      start_s: w ? Number(w.region.start.toFixed(3)) : 0, seconds: numberOrNull('g-prime-seconds') };
  }
  return b;
}

async function start(ev) {
  ev.preventDefault();
  if (!token) {
    say('read-only: open the URL `inspire studio` printed (with ?token=...) to generate', { error: true });
    return;
  }
  clearErrors();
  for (const e of state.editors) e.showError('');
  for (const list of Object.values(state.truncation)) list.clearErrors();
  const button = $('g-start');
  button.disabled = true;
  try {
    const r = await postJSON('/api/generate', body());
    say(`job ${r.id} started: ${r.job.command}`);
    renderJobs([r.job], { merge: true });
    poll();
  } catch (err) {
    showError(err);
    say(err.message, { error: true });
  } finally {
    button.disabled = false;
  }
}

// ---- the prime: a moment of a prepared track -----------------------------------------------

async function loadTracks() {
  const run = currentRun();
  const select = $('g-track');
  if (!run) return;
  if (state.tracks && state.tracks.run === run.key) return;
  try {
    const data = await getJSON(`/api/runs/${run.key}/tracks`);
    state.tracks = { run: run.key, ...data };
  } catch (err) {
    state.tracks = { run: run.key, tracks: [], error: err.message };
  }
  select.replaceChildren(...state.tracks.tracks.map((t) => new Option(`${t.name} (${clock(t.seconds)})`, t.id)));
  if (!state.tracks.tracks.length) select.replaceChildren(new Option(state.tracks.error || 'no prepared tracks', ''));
}

async function showTrack() {
  const mode = document.querySelector('input[name="g-prime"]:checked').value;
  const box = $('g-track-wave');
  box.hidden = mode !== 'track';
  $('g-prime-at').hidden = mode !== 'track';
  if (mode !== 'track') return;
  await loadTracks();
  const track = (state.tracks.tracks || []).find((t) => t.id === $('g-track').value);
  if (!track || (state.trackWave && state.trackWave.track.id === track.id)) return;
  if (state.trackWave) state.trackWave.ws.destroy();
  box.replaceChildren();
  const data = await loadWaveform(track.waveform_url);
  const regions = RegionsPlugin.create();
  const ws = WaveSurfer.create({
    container: box, height: 64, peaks: [data.peakValues], duration: data.duration, waveColor: '#8b93a7',
    progressColor: '#8b93a7', cursorWidth: 0, normalize: false, interact: true, plugins: [regions],
  });
  await new Promise((resolve) => (ws.getDuration() > 0 ? resolve() : ws.once('ready', resolve)));
  const len = Math.min(primeSeconds(), data.duration);
  const region = regions.addRegion({ start: 0, end: len, color: PRIME_COLOUR, drag: true, resize: false });
  ws.on('interaction', (t) => moveRegion(t));
  region.on('update-end', () => primeAt(region.start));
  state.trackWave = { ws, regions, region, track };
  box.dataset.track = track.name;
  primeAt(0);
}

/** Say where the prime starts (drag the stretch or click the waveform to move it). */
function primeAt(start) {
  $('g-track-wave').dataset.start = start.toFixed(3);
  const w = state.trackWave;
  $('g-prime-at').textContent = w
    ? `${clock(start)} to ${clock(Math.min(start + primeSeconds(), w.ws.getDuration()))} of ${w.track.name}: `
      + 'drag the stretch or click the waveform' : '';
}

function primeSeconds() {
  const v = Number($('g-prime-seconds').value);
  return v > 0 && Number.isFinite(v) ? v : 4;
}

/** Put the prime's stretch at `t` seconds of the track (clicked on the waveform). */
function moveRegion(t) {
  const w = state.trackWave;
  if (!w) return;
  const dur = w.ws.getDuration();
  const len = Math.min(primeSeconds(), dur);
  const startAt = Math.max(0, Math.min(t, dur - len));
  w.region.setOptions({ start: startAt, end: startAt + len });
  primeAt(startAt);
}

function listen() {
  const w = state.trackWave;
  if (!w) { say('choose "this moment" and a track first'); return; }
  if (!state.primeAudio) {
    state.primeAudio = document.createElement('audio');
    document.body.appendChild(state.primeAudio);
  }
  const a = state.primeAudio;
  a.src = `${w.track.excerpt_url}?start=${w.region.start.toFixed(3)}&seconds=${Math.min(primeSeconds(), 30)}`;
  a.play().catch((err) => say(`cannot play: ${err.message}`, { error: true }));
}

// ---- jobs ----------------------------------------------------------------------------------

/** A time left: "40 s", "3:58", "1:02:05". */
function left(seconds) {
  const total = Math.max(1, Math.round(seconds));
  if (total < 60) return `${total} s`;
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

class JobCard {
  constructor(job) {
    this.id = job.id;
    this.el = document.createElement('article');
    this.el.className = 'job';
    this.el.dataset.id = job.id;
    this.el.innerHTML = `
      <div class="job-head"><span class="badge state"></span><strong class="what"></strong>
        <span class="when"></span></div>
      <div class="jbar"><div></div></div>
      <div class="job-line"></div>
      <div class="job-error"></div>
      <code class="job-command"></code>
      <div class="job-actions">
        <button type="button" class="cancel">cancel</button>
        <button type="button" class="resume">resume</button>
        <a class="show-clips" href="#">show clips</a>
        <span class="outputs"></span>
        <a class="log" target="_blank" rel="noopener">log</a>
      </div>`;
    this.el.querySelector('.cancel').addEventListener('click', () => this.act('cancel'));
    this.el.querySelector('.resume').addEventListener('click', () => this.act('resume'));
    this.update(job);
  }

  async act(what) {
    try {
      this.update(await postJSON(`/api/jobs/${this.id}/${what}`));
      poll();
    } catch (err) {
      say(err.message, { error: true });
    }
  }

  update(job) {
    const text = JSON.stringify(job);
    if (text === this.last) return;
    this.last = text;
    this.job = job;
    const el = this.el;
    el.dataset.state = job.state;
    const active = job.state === 'queued' || job.state === 'running';
    const badge = el.querySelector('.state');
    badge.textContent = job.cancelling ? 'cancelling' : job.interrupted ? 'interrupted' : job.state;
    badge.className = `badge state s-${job.state}`;
    const req = job.request || {};
    const extra = [
      ...[['min_p', 'min-p', '0'], ['top_p', 'top-p', '1']].filter(([k, , off]) => req[k] && req[k].join() !== off)
        .map(([k, name]) => `${name} ${req[k].join(' | ')}`),
      req.guard ? 'guard' : '', req.steer ? `steer ${req.steer.join(' | ')}` : '',
    ].filter(Boolean);
    const what = el.querySelector('.what');
    what.textContent = job.kind === 'render'
      ? `render ${req.name}` : [`${req.n} × ${req.seconds} s, T ${(req.temperature || []).join(' | ')}`, ...extra].join(' · ');
    what.title = what.textContent;
    el.querySelector('.when').textContent = (job.created || '').replace('T', ' ').replace('+00:00', ' UTC');
    el.querySelector('.jbar div').style.width = `${Math.round(100 * (job.state === 'done' ? 1 : job.fraction || 0))}%`;
    let line = job.kind === 'render' ? (job.state === 'done' ? 'piece written' : '') : `${job.done}/${job.total} clips`;
    if (job.state === 'running' && Number.isFinite(job.eta_s)) line += ` · about ${left(job.eta_s)} left`;
    if (job.state === 'queued') line += ' · waiting for the run\'s running job';
    if (job.kind === 'render' && job.state === 'done' && job.outputs) {
      line = `${clock(job.outputs.seconds)} · ${job.outputs.loudness ? `${job.outputs.loudness.integrated_lufs} LUFS` : ''}`;
    }
    el.querySelector('.job-line').textContent = line;
    el.querySelector('.job-error').textContent = job.error || '';
    el.querySelector('.job-command').textContent = job.command;
    el.querySelector('.cancel').hidden = !active || job.cancelling;
    el.querySelector('.resume').hidden = !(job.state === 'failed' || job.state === 'cancelled');
    const show = el.querySelector('.show-clips');
    show.hidden = !(job.kind === 'generate' && job.folder && job.folder.key && job.clips.length);
    if (!show.hidden) show.href = `#clips/${encodeURIComponent(job.folder.key)}`;
    show.textContent = `show ${job.clips.length} clip${job.clips.length === 1 ? '' : 's'}`;
    const outputs = el.querySelector('.outputs');
    outputs.replaceChildren();
    if (job.outputs) {
      const links = [['piece', job.outputs.piece], ['arrangement', job.outputs.arrangement],
        ['labels', job.outputs.labels], ['json', job.outputs.json],
        ...(job.outputs.stems || []).map((u, i) => [`stem ${i + 1}`, u])];
      for (const [name, url] of links) {
        if (!url) continue;
        const a = document.createElement('a');
        a.href = url;
        a.textContent = name;
        a.setAttribute('download', '');
        outputs.appendChild(a);
      }
    }
    const log = el.querySelector('.log');
    log.hidden = !job.log_url;
    if (job.log_url) log.href = job.log_url;
  }
}

function renderJobs(jobs, { merge = false } = {}) {
  const list = $('job-list');
  const seen = new Set();
  for (const job of jobs) {
    seen.add(job.id);
    let card = state.cards.get(job.id);
    if (!card) {
      card = new JobCard(job);
      state.cards.set(job.id, card);
    } else {
      card.update(job);
    }
  }
  if (!merge) for (const id of [...state.cards.keys()]) if (!seen.has(id)) state.cards.delete(id);
  const cards = [...state.cards.values()].sort((a, b) => (a.job.created < b.job.created ? 1 : -1));
  if (!cards.length) {
    list.innerHTML = '<div class="empty">No jobs yet.</div>';
  } else {
    list.replaceChildren(...cards.map((c) => c.el));
  }
  document.body.dataset.jobs = String(cards.length);
}

async function poll() {
  clearTimeout(state.timer);
  let active = false;
  if (!document.hidden) {
    try {
      const { jobs } = await getJSON('/api/jobs');
      renderJobs(jobs);
      active = jobs.some((j) => j.state === 'queued' || j.state === 'running');
    } catch (err) {
      say(`cannot read the jobs: ${err.message}`, { error: true });
    }
  }
  const shown = !$('generate-view').hidden;
  state.timer = setTimeout(poll, active && shown ? POLL_ACTIVE_MS : POLL_IDLE_MS);
}

// ---- the view ------------------------------------------------------------------------------

async function init() {
  const { runs } = await getJSON('/api/runs');
  state.runs = runs;
  fillRuns();
  addCurve('1.0');
  state.truncation.min_p = new SpecList($('g-min-p'), { control: 'min-p', placeholder: '0 (off), 0.02 or 0:0.05', onChange: relabelCurves });
  state.truncation.top_p = new SpecList($('g-top-p'), { control: 'top-p', placeholder: '1 (off), 0.95 or 0:1,1:0.9', onChange: relabelCurves });
  showSteer();
  $('g-add-steer').addEventListener('click', () => {
    const last = state.steers[state.steers.length - 1];
    addSteer(last ? last.spec : '');
  });
  form().addEventListener('submit', start);
  $('g-add-curve').addEventListener('click', () => {
    const last = state.editors[state.editors.length - 1];
    addCurve(last ? last.spec : '1.0');
  });
  $('g-run').addEventListener('change', () => { fillCheckpoints(); showSteer(); state.tracks = null; showTrack(); });
  $('g-checkpoint').addEventListener('change', () => { $('g-checkpoint').dataset.user = '1'; });
  $('g-seconds').addEventListener('input', () => {
    for (const e of state.editors) e.setSeconds(seconds());
    for (const e of state.steers) e.setSeconds(seconds());
  });
  $('g-n').addEventListener('input', relabelCurves);
  for (const r of document.querySelectorAll('input[name="g-prime"]')) r.addEventListener('change', showTrack);
  $('g-track').addEventListener('change', showTrack);
  $('g-track').addEventListener('focus', () => { document.querySelector('input[name="g-prime"][value="track"]').checked = true; showTrack(); });
  $('g-prime-seconds').addEventListener('input', () => {
    if (state.trackWave) moveRegion(state.trackWave.region.start);
  });
  $('g-listen').addEventListener('click', listen);
  await loadTracks();
  if (!runs.length) {
    $('g-start').disabled = true;
    document.querySelector('#gen-form .field-error[data-error-for=""]').textContent =
      'No run folder is open: open one with `inspire studio RUN_DIR` to generate from it.';
  }
  state.ready = true;
}

export async function show() {
  if (!state.ready) await init();
  else {
    // The runs view may have chosen another checkpoint since.
    const { runs } = await getJSON('/api/runs');
    state.runs = runs;
    fillRuns();
  }
  for (const e of state.editors) e.draw();
  for (const e of state.steers) e.draw();
  await poll();
  document.body.dataset.generateReady = '1';
}
