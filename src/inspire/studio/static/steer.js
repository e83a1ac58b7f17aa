// The generate view's second and third controls: truncation curves (min-p, top-p: text in the
// temperature grammar, a sweep of several) and steering curves over a labelled model's labels,
// drawn as the label weights stacked over the clip on the temperature curve's time axis.
// The server is the judge of every text (POST /api/schedule with a control, POST /api/steer), so
// the messages shown next to a field are `inspire generate`'s own.
//
// Written by hand: no vendored library draws stacked weight areas; it is a canvas and a loop.

import { ApiError, postJSON } from './api.js';
import { PAD } from './curve.js';
import { sharpCanvas } from './wave.js';

const CHECK_MS = 250;
const NONE = 'none';
const NONE_RGB = [89, 96, 110];
// One colour per label, by its place in the model's list (so neighbours never look alike).
const PALETTE = [[124, 196, 255], [255, 159, 90], [95, 211, 141], [217, 140, 255], [255, 209, 102], [255, 107, 107],
  [80, 220, 220], [240, 120, 190]];
const T_STEPS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600];

/** A label's colour on the steering plot: by its row (1: the model's first label; 0: none, grey). */
export function labelColour(row, alpha = 1) {
  const [r, g, b] = row === 0 ? NONE_RGB : PALETTE[(row - 1) % PALETTE.length];
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

const quoted = (label) => (/[,:"]/.test(label) ? `"${label}"` : label);

/** Check `text` when typing pauses (and at once on change); `check(text)` resolves or throws. */
function watch(input, check) {
  let timer = null;
  input.addEventListener('input', () => {
    clearTimeout(timer);
    timer = setTimeout(() => check(input.value), CHECK_MS);
  });
  input.addEventListener('change', () => { clearTimeout(timer); check(input.value); });
}

// ---- truncation: a list of curve specs ------------------------------------------------------

/** Min-p or top-p specs as text, one field each (several make a sweep), each checked as typed. */
export class SpecList {
  /**
   * @param {HTMLElement} parent
   * @param {object} o {control: 'min-p'|'top-p', placeholder, onChange()}
   */
  constructor(parent, { control, placeholder, onChange = () => {} }) {
    this.control = control;
    this.placeholder = placeholder;
    this.onChange = onChange;
    this.rows = [];
    this.el = document.createElement('div');
    this.el.className = 'spec-list';
    this.el.dataset.control = control;
    this.list = document.createElement('div');
    this.add = document.createElement('button');
    this.add.type = 'button';
    this.add.className = 'add-spec';
    this.add.textContent = '+ sweep';
    this.add.title = `another ${control} curve: the clips take them in turn`;
    this.add.addEventListener('click', () => { this.addRow(this.rows.length ? this.rows.at(-1).input.value : ''); });
    this.el.append(this.list, this.add);
    parent.appendChild(this.el);
    this.addRow('');
  }

  /** The specs typed (empty fields left out). */
  get specs() { return this.rows.map((r) => r.input.value.trim()).filter(Boolean); }

  addRow(text) {
    const row = document.createElement('div');
    row.className = 'spec-row';
    row.innerHTML = `<input class="spec mono" spellcheck="false">
      <button type="button" class="remove" title="remove">×</button><div class="field-error"></div>`;
    const r = { el: row, input: row.querySelector('input'), error: row.querySelector('.field-error'), ticket: 0 };
    r.input.placeholder = this.placeholder;
    r.input.value = text;
    r.input.dataset.control = this.control;
    row.querySelector('.remove').addEventListener('click', () => {
      this.rows = this.rows.filter((x) => x !== r);
      row.remove();
      if (!this.rows.length) this.addRow('');
      this.relabel();
      this.onChange();
    });
    watch(r.input, (t) => this.check(r, t));
    this.rows.push(r);
    this.list.appendChild(row);
    this.relabel();
    if (text) this.check(r, text);
    this.onChange();
    return r;
  }

  relabel() {
    for (const r of this.rows) r.el.querySelector('.remove').hidden = this.rows.length === 1;
  }

  /** The n-th non-empty spec's row (the server's "index" counts the specs sent). */
  rowOf(index) { return this.rows.filter((r) => r.input.value.trim())[index] || this.rows[0]; }

  showError(index, message) {
    const r = this.rowOf(index);
    r.error.textContent = message || '';
    r.input.classList.toggle('invalid', !!message);
  }

  clearErrors() { for (const r of this.rows) { r.error.textContent = ''; r.input.classList.remove('invalid'); } }

  async check(r, text) {
    const ticket = ++r.ticket;
    let message = '';
    if (text.trim()) {
      try {
        await postJSON('/api/schedule', { spec: text, control: this.control });
      } catch (err) {
        message = err instanceof ApiError ? err.message : String(err);
      }
    }
    if (ticket !== r.ticket) return;
    r.error.textContent = message;
    r.input.classList.toggle('invalid', !!message);
    this.onChange();
  }
}

// ---- steering: a spec, label chips and the drawn weights ------------------------------------

export class SteerEditor {
  /**
   * @param {HTMLElement} parent
   * @param {object} o {spec, run(): run key, seconds, labels, onRemove(editor)}
   */
  constructor(parent, { spec = '', run, seconds = 30, labels = [], onRemove = null }) {
    this.run = run;
    this.seconds = seconds;
    this.labels = labels;
    this.resolved = null;  // the server's answer for the spec shown (POST /api/steer)
    this.ticket = 0;
    this.el = document.createElement('div');
    this.el.className = 'steer-editor';
    this.el.innerHTML = `
      <div class="curve-head"><strong class="cname"></strong><span class="clips-of"></span>
        <span class="chips" title="click a label to steer to it; click another to morph into it"></span>
        <button type="button" class="remove" title="remove this steering curve">remove</button></div>
      <canvas class="scurve" aria-label="steering curve: label weights over the clip"></canvas>
      <div class="legend"></div>
      <label class="spec-line">steer <input class="spec mono" spellcheck="false"
        placeholder="a label, FROM:TO, or 0s:A,20s:B,45s:none"></label>
      <div class="field-error spec-error"></div>`;
    this.canvas = this.el.querySelector('canvas');
    this.input = this.el.querySelector('.spec');
    this.errorEl = this.el.querySelector('.spec-error');
    const remove = this.el.querySelector('.remove');
    if (onRemove) remove.addEventListener('click', () => onRemove(this));
    else remove.hidden = true;
    watch(this.input, (t) => this.check(t));
    parent.appendChild(this.el);
    new ResizeObserver(() => this.draw()).observe(this.canvas);
    this.setLabels(labels);
    this.setSpec(spec);
  }

  get spec() { return this.input.value.trim(); }

  setLabel(name, clipsText, { removable = true } = {}) {
    this.el.querySelector('.cname').textContent = name;
    this.el.querySelector('.clips-of').textContent = clipsText;
    this.el.querySelector('.remove').hidden = !removable;
  }

  setLabels(labels) {
    this.labels = labels;
    const chips = this.el.querySelector('.chips');
    chips.replaceChildren(...[...labels, NONE].map((label, i) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'chip';
      b.dataset.label = label;
      b.textContent = label;
      b.style.borderColor = labelColour(label === NONE ? 0 : i + 1);
      b.addEventListener('click', () => this.chip(label));
      return b;
    }));
  }

  /** A chip clicked: a constant label; after a constant, a morph from it into this one. */
  chip(label) {
    const now = this.resolved && !this.errorEl.textContent ? this.resolved.labels_at : null;
    const morph = now && now.length === 1 && now[0].toLowerCase() !== label.toLowerCase();
    this.setSpec(morph ? `${quoted(now[0])}:${quoted(label)}` : quoted(label));
  }

  setSeconds(seconds) {
    if (!(seconds > 0 && Number.isFinite(seconds)) || seconds === this.seconds) return;
    this.seconds = seconds;
    if (this.spec) this.check(this.spec);
  }

  setSpec(text) {
    this.input.value = text;
    return this.check(text);
  }

  showError(message) {
    this.errorEl.textContent = message || '';
    this.input.classList.toggle('invalid', !!message);
    this.draw();
  }

  /** Ask the server (the command line's parser, the run's labels) and draw its weights. */
  async check(text) {
    const ticket = ++this.ticket;
    if (!text.trim()) {
      this.resolved = null;
      this.showError('');
      return;
    }
    try {
      const r = await postJSON('/api/steer', { run: this.run(), spec: text, seconds: this.seconds });
      if (ticket !== this.ticket) return;
      this.resolved = r;
      this.showError('');
    } catch (err) {
      if (ticket !== this.ticket) return;
      this.showError(err instanceof ApiError ? err.message : String(err));
    }
  }

  // ---- drawing: the weights stacked, each label its colour, on the temperature plot's axis --

  draw() {
    const { ctx, w, h } = sharpCanvas(this.canvas, 640, 110);
    const r = this.resolved;
    const last = r ? r.times_s.at(-1) : this.seconds;
    const t1 = last > this.seconds ? last * 1.05 : this.seconds;  // as the temperature curve's axis
    const x = (t) => PAD.l + (t / t1) * (w - PAD.l - PAD.r);
    const y = (v) => PAD.t + (1 - v) * (h - PAD.t - PAD.b);
    ctx.font = '11px system-ui, sans-serif';
    ctx.strokeStyle = '#323743';
    ctx.fillStyle = '#9aa1ae';
    ctx.lineWidth = 1;
    for (const v of [0, 0.5, 1]) {
      ctx.beginPath(); ctx.moveTo(PAD.l, y(v)); ctx.lineTo(w - PAD.r, y(v)); ctx.stroke();
      ctx.fillText(`${Math.round(v * 100)}%`, 4, y(v) + 4);
    }
    const tStep = T_STEPS.find((s) => t1 / s <= 8) || 1200;
    for (let t = 0; t <= t1 + 1e-9; t += tStep) {
      ctx.beginPath(); ctx.moveTo(x(t), PAD.t); ctx.lineTo(x(t), h - PAD.b); ctx.stroke();
      ctx.fillText(`${Number(t.toFixed(2))} s`, x(t) - 8, h - 6);
    }
    const legend = this.el.querySelector('.legend');
    const stale = !!this.errorEl.textContent;
    if (!r) {
      legend.replaceChildren();
      this.canvas.dataset.series = '[]';
      delete this.canvas.dataset.spec;
      return;
    }
    // The times as drawn: the server's points, held to the axis's end.
    const ts = [...r.times_s];
    const held = ts.at(-1) < t1;
    if (held) ts.push(t1);
    const below = ts.map(() => 0);
    for (const s of r.series) {
      const ws = held ? [...s.weights, s.weights.at(-1)] : s.weights;
      const above = below.map((b, i) => b + ws[i]);
      ctx.beginPath();
      ts.forEach((t, i) => (i ? ctx.lineTo(x(t), y(above[i])) : ctx.moveTo(x(t), y(above[i]))));
      for (let i = ts.length - 1; i >= 0; i--) ctx.lineTo(x(ts[i]), y(below[i]));
      ctx.closePath();
      ctx.fillStyle = labelColour(s.row, stale ? 0.25 : 0.8);
      ctx.fill();
      above.forEach((v, i) => { below[i] = v; });
    }
    if (t1 > this.seconds) {  // past the clip's end
      ctx.fillStyle = 'rgba(0, 0, 0, 0.35)';
      ctx.fillRect(x(this.seconds), PAD.t, w - PAD.r - x(this.seconds), h - PAD.t - PAD.b);
    }
    ctx.fillStyle = '#ffffff';
    for (let i = 0; i < r.positions.length; i++) {  // the breakpoints, named
      const t = r.unit === 'fraction' ? r.positions[i] * this.seconds : r.positions[i];
      ctx.beginPath(); ctx.moveTo(x(t), PAD.t); ctx.lineTo(x(t), PAD.t + 6); ctx.strokeStyle = '#fff'; ctx.stroke();
    }
    legend.replaceChildren(...r.series.map((s) => {
      const item = document.createElement('span');
      item.className = 'legend-item';
      item.dataset.label = s.label;
      item.innerHTML = '<span class="swatch"></span>';
      item.querySelector('.swatch').style.background = labelColour(s.row);
      item.append(s.label);
      return item;
    }));
    // For tests and scripts: what is drawn, and on which axis.
    this.canvas.dataset.spec = r.spec;
    this.canvas.dataset.series = JSON.stringify(r.series.map((s) => ({ label: s.label, weights: s.weights })));
    this.canvas.dataset.times = JSON.stringify(r.times_s);
    this.canvas.dataset.plot = JSON.stringify({ l: PAD.l, r: PAD.r, t: PAD.t, b: PAD.b, w, h, t1 });
  }
}
