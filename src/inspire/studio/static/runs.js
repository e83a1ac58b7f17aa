// The runs view: the training curve (bits per sample against the memoryless baseline, redrawn
// while training runs) and every checkpoint's previews side by side, to pick the checkpoint
// that sounds best rather than the one with the lowest loss.

import { getJSON, putJSON, say, token } from './api.js';
import { claim, createWave, loadWaveform, sharpCanvas } from './wave.js';

const METRICS_MS = 5000;
const CHECKPOINTS_MS = 15000;

const runs = new Map();  // key -> RunPanel

class RunPanel {
  constructor(run) {
    this.key = run.key;
    this.run = run;
    this.rows = [];
    this.next = 0;
    this.baseline = null;
    this.el = document.createElement('article');
    this.el.className = 'run';
    this.el.dataset.key = run.key;
    this.el.innerHTML = `
      <h2></h2><div class="path mono"></div>
      <div class="chosen-line"></div>
      <canvas class="curve"></canvas>
      <table class="ckpts"><thead></thead><tbody></tbody></table>`;
    this.waves = new Map();  // preview path -> { ws, media }
    this.observer = new IntersectionObserver((items) => {
      for (const item of items) if (item.isIntersecting) this.hydrate(item.target);
    }, { rootMargin: '300px 0px' });
    this.render();
  }

  async pollMetrics() {
    const data = await getJSON(`${this.run.metrics_url}?since=${this.next}`);
    if (data.next < this.next) this.rows = [];  // the log started over (a restarted run)
    if (data.rows.length || data.next !== this.next) {
      this.rows = data.next < this.next ? data.rows : this.rows.concat(data.rows);
      this.next = data.next;
      if (data.baseline_bits !== null) this.baseline = data.baseline_bits;
      this.drawCurve();
    }
  }

  update(run) {
    const before = JSON.stringify(this.run.checkpoints.map((c) => [c.name, c.previews.length, c.file]));
    const after = JSON.stringify(run.checkpoints.map((c) => [c.name, c.previews.length, c.file]));
    this.run = run;
    if (before !== after) this.render();
    else this.renderChoice();
    this.drawCurve();
  }

  render() {
    const run = this.run;
    this.el.querySelector('h2').textContent = run.name;
    this.el.querySelector('.path').textContent = run.path;
    const temps = [...new Set(run.checkpoints.flatMap((c) => c.previews.map((p) => p.temperature)))].sort((a, b) => a - b);
    const head = this.el.querySelector('thead');
    head.innerHTML = '<tr><th>checkpoint</th><th>validation</th></tr>';
    for (const t of temps) {
      const th = document.createElement('th');
      th.textContent = `T ${t.toFixed(2)}`;
      head.firstChild.appendChild(th);
    }
    head.firstChild.appendChild(document.createElement('th'));
    const body = this.el.querySelector('tbody');
    body.replaceChildren();
    for (const w of this.waves.values()) { w.media.pause(); w.ws.destroy(); w.media.remove(); }
    this.waves.clear();
    if (!run.checkpoints.length) {
      body.innerHTML = `<tr><td colspan="${3 + temps.length}" class="empty">No checkpoints yet: they appear here as
        <code>inspire train</code> saves them, each with its previews.</td></tr>`;
    }
    for (const ck of run.checkpoints) {
      const tr = document.createElement('tr');
      tr.dataset.checkpoint = ck.name;
      const tags = [ck.best ? 'best' : '', ck.last ? 'last' : '', ck.file ? '' : 'pruned'].filter(Boolean)
        .map((t) => `<span class="tag">${t}</span>`).join('');
      tr.innerHTML = `<td class="step">step ${ck.step}${tags}</td><td class="val mono"></td>`;
      for (const t of temps) {
        const td = document.createElement('td');
        const p = ck.previews.find((q) => q.temperature === t);
        if (p && p.audio_url) {
          td.innerHTML = '<div class="preview"><button type="button" class="play" title="play / pause">&#9654;</button><div class="pwave"></div></div>';
          td.querySelector('.preview').dataset.path = p.path;
          td.querySelector('.preview').dataset.audio = p.audio_url;
          td.querySelector('.preview').dataset.waveform = p.waveform_url;
          td.querySelector('.play').addEventListener('click', () => this.toggle(td.querySelector('.preview')));
          this.observer.observe(td.querySelector('.preview'));
        }
        tr.appendChild(td);
      }
      const choose = document.createElement('td');
      choose.innerHTML = '<button type="button" class="choose">generate from this</button>';
      choose.querySelector('button').addEventListener('click', () => this.choose(ck.name));
      tr.appendChild(choose);
      body.appendChild(tr);
    }
    this.renderChoice();
    this.fillValidation();
  }

  renderChoice() {
    const chosen = this.run.chosen;
    const step = chosen ? Number(chosen.replace('step-', '')) : null;
    const line = this.el.querySelector('.chosen-line');
    line.innerHTML = chosen
      ? `Chosen to generate from: <strong>step ${step}</strong> &mdash; <code></code>`
      : 'No checkpoint chosen yet: audition the previews and press &ldquo;generate from this&rdquo; on the one that sounds best.';
    const code = line.querySelector('code');
    if (code) code.textContent = `inspire generate ${this.run.path} --checkpoint ${step}`;
    for (const tr of this.el.querySelectorAll('tbody tr')) {
      tr.classList.toggle('chosen', tr.dataset.checkpoint === chosen);
      const b = tr.querySelector('.choose');
      if (b) b.textContent = tr.dataset.checkpoint === chosen ? 'chosen ✓' : 'generate from this';
    }
  }

  fillValidation() {
    const byStep = new Map(this.rows.filter((r) => r.val_bits !== undefined).map((r) => [r.step, r.val_bits]));
    for (const tr of this.el.querySelectorAll('tbody tr')) {
      const ck = this.run.checkpoints.find((c) => c.name === tr.dataset.checkpoint);
      const cell = tr.querySelector('.val');
      if (ck && cell) cell.textContent = byStep.has(ck.step) ? `${byStep.get(ck.step).toFixed(3)} bits` : '';
    }
  }

  async hydrate(preview) {
    if (this.waves.has(preview.dataset.path) || preview.dataset.loading) return this.waves.get(preview.dataset.path);
    preview.dataset.loading = '1';
    try {
      const data = await loadWaveform(preview.dataset.waveform);
      const w = await createWave(preview.querySelector('.pwave'), preview.dataset.audio, data, { height: 40, timeline: false });
      const button = preview.querySelector('.play');
      w.media.addEventListener('play', () => { button.innerHTML = '&#10074;&#10074;'; });
      w.media.addEventListener('pause', () => { button.innerHTML = '&#9654;'; });
      this.waves.set(preview.dataset.path, w);
      return w;
    } catch (err) {
      preview.querySelector('.pwave').textContent = `cannot draw: ${err.message}`;
      return null;
    } finally {
      delete preview.dataset.loading;
    }
  }

  async toggle(preview) {
    const w = this.waves.get(preview.dataset.path) || await this.hydrate(preview);
    if (!w) return;
    claim(w.media);
    await w.ws.playPause();
  }

  async choose(name) {
    if (!token) {
      say('read-only: open the URL `inspire studio` printed (with ?token=...) to choose a checkpoint', { error: true });
      return;
    }
    const value = this.run.chosen === name ? null : name;
    try {
      const run = await putJSON(`/api/runs/${this.key}/checkpoint`, { checkpoint: value });
      this.update(run);
      say(value ? `${run.name}: generate from ${value} (saved in studio.json)` : `${run.name}: no checkpoint chosen`);
    } catch (err) {
      say(`not saved: ${err.message}`, { error: true });
    }
  }

  drawCurve() {
    this.fillValidation();
    const { ctx, w, h } = sharpCanvas(this.el.querySelector('.curve'), 800, 240);
    ctx.font = '11px system-ui, sans-serif';
    const train = this.rows.filter((r) => Number.isFinite(r.train_bits));
    const val = this.rows.filter((r) => Number.isFinite(r.val_bits));
    if (!train.length && !val.length) {
      ctx.fillStyle = '#9aa1ae';
      ctx.fillText('No training log yet (metrics.jsonl): it is drawn here as training runs.', 16, 24);
      return;
    }
    const pad = { l: 48, r: 160, t: 24, b: 26 };
    const steps = this.rows.map((r) => r.step);
    const x0 = 0;
    const x1 = Math.max(...steps, 1);
    const ys = [...train.map((r) => r.train_bits), ...val.map((r) => r.val_bits)];
    if (this.baseline !== null) ys.push(this.baseline);
    let y0 = Math.min(...ys);
    let y1 = Math.max(...ys);
    if (y1 - y0 < 0.1) { y0 -= 0.05; y1 += 0.05; }
    const X = (s) => pad.l + (s - x0) / (x1 - x0) * (w - pad.l - pad.r);
    const Y = (b) => pad.t + (1 - (b - y0) / (y1 - y0)) * (h - pad.t - pad.b);
    // grid and axes
    ctx.strokeStyle = '#323743';
    ctx.fillStyle = '#9aa1ae';
    ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const b = y0 + (i / 4) * (y1 - y0);
      ctx.beginPath(); ctx.moveTo(pad.l, Y(b)); ctx.lineTo(w - pad.r, Y(b)); ctx.stroke();
      ctx.fillText(b.toFixed(2), 6, Y(b) + 4);
    }
    for (let i = 0; i <= 4; i++) {
      const s = Math.round(x0 + (i / 4) * (x1 - x0));
      ctx.fillText(String(s), X(s) - 10, h - 8);
    }
    ctx.fillText('bits / sample', 6, 12);
    ctx.fillText('step', w - pad.r + 12, h - 8);
    // checkpoints: ticks, the chosen one highlighted
    for (const ck of this.run.checkpoints) {
      const chosen = ck.name === this.run.chosen;
      ctx.strokeStyle = chosen ? '#5fd38d' : '#3b4150';
      ctx.lineWidth = chosen ? 2 : 1;
      ctx.beginPath(); ctx.moveTo(X(ck.step), pad.t); ctx.lineTo(X(ck.step), h - pad.b); ctx.stroke();
    }
    const line = (rows, key, colour, dots) => {
      ctx.strokeStyle = colour; ctx.fillStyle = colour; ctx.lineWidth = 1.5;
      ctx.beginPath();
      rows.forEach((r, i) => (i ? ctx.lineTo(X(r.step), Y(r[key])) : ctx.moveTo(X(r.step), Y(r[key]))));
      ctx.stroke();
      if (dots) for (const r of rows) { ctx.beginPath(); ctx.arc(X(r.step), Y(r[key]), 2.5, 0, 2 * Math.PI); ctx.fill(); }
    };
    line(train, 'train_bits', '#7cc4ff', false);
    line(val, 'val_bits', '#ff9f5a', true);
    const legend = [['train', '#7cc4ff'], ['validation', '#ff9f5a']];
    if (this.baseline !== null) {
      ctx.setLineDash([5, 4]);
      ctx.strokeStyle = '#c0c4cc';
      ctx.beginPath(); ctx.moveTo(pad.l, Y(this.baseline)); ctx.lineTo(w - pad.r, Y(this.baseline)); ctx.stroke();
      ctx.setLineDash([]);
      legend.push([`memoryless ${this.baseline.toFixed(2)}`, '#c0c4cc']);
    }
    legend.push(['chosen checkpoint', '#5fd38d']);
    legend.forEach(([label, colour], i) => {
      ctx.fillStyle = colour;
      ctx.fillRect(w - pad.r + 12, pad.t + 4 + 16 * i, 10, 3);
      ctx.fillStyle = '#e4e6eb';
      ctx.fillText(label, w - pad.r + 26, pad.t + 9 + 16 * i);
    });
  }
}

async function loadRuns() {
  const { runs: list } = await getJSON('/api/runs');
  const container = document.getElementById('run-list');
  if (!list.length) {
    container.innerHTML = '<div class="empty">No run folder was opened. Open one with <code>inspire studio RUN_DIR</code> '
      + 'to see its training curve and audition each checkpoint\'s previews.</div>';
    return;
  }
  for (const run of list) {
    let panel = runs.get(run.key);
    if (!panel) {
      panel = new RunPanel(run);
      runs.set(run.key, panel);
      container.appendChild(panel.el);
    } else {
      panel.update(run);
    }
  }
}

let timers = [];
export async function show() {
  await loadRuns();
  await Promise.all([...runs.values()].map((p) => p.pollMetrics().catch((err) => say(err.message, { error: true }))));
  for (const p of runs.values()) p.drawCurve();
  if (!timers.length) {
    timers.push(setInterval(() => {
      if (document.hidden || document.getElementById('runs-view').hidden) return;
      for (const p of runs.values()) p.pollMetrics().catch(() => {});
    }, METRICS_MS));
    timers.push(setInterval(() => {
      if (document.hidden || document.getElementById('runs-view').hidden) return;
      loadRuns().catch(() => {});
    }, CHECKPOINTS_MS));
  }
  document.body.dataset.runsLoaded = String(runs.size);
}
