// The temperature curve editor: a plot with a time axis in seconds, breakpoints dragged with the
// mouse, and the same schedule text `inspire generate --temperature` takes (inspire/schedule.py),
// kept in step both ways: drawing writes the text, typing redraws the curve. The server's parser
// (POST /api/schedule) is the judge of any text, so its messages are the command line's.
//
// Written by hand: no vendored library edits a breakpoint curve (wavesurfer's regions are
// spans, not points), and it is a canvas, a few pointer handlers and the grammar's printer.

import { ApiError, postJSON } from './api.js';
import { sharpCanvas } from './wave.js';

export const PRESETS = [
  ['constant', '1.0'],
  ['0.875 → 1.15', '0.875:1.15'],
  ['rise and fall', '0:0.9,0.5:1.15,1:0.9'],
];
const HIT_PX = 9;
export const PAD = { l: 40, r: 22, t: 10, b: 22 };  // the plot's margins (steer.js draws on the same axis)
const V_MIN = 0.01;
const V_MAX = 5;

const trim = (x, digits) => String(Number(x.toFixed(digits)));

/** The schedule text of a curve {unit, positions, values} (the grammar's shortest form). */
export function specOf(curve) {
  const { unit, positions: ps, values: vs } = curve;
  const v = (x) => trim(x, 3);
  if (vs.length === 1) return v(vs[0]).includes('.') ? v(vs[0]) : `${v(vs[0])}.0`;
  if (unit === 'fraction') {
    if (ps.length === 2 && ps[0] === 0 && ps[1] === 1) return `${v(vs[0])}:${v(vs[1])}`;
    return ps.map((p, i) => `${trim(p, 4)}:${v(vs[i])}`).join(',');
  }
  return ps.map((p, i) => `${trim(p, 2)}s:${v(vs[i])}`).join(',');
}

export class CurveEditor {
  /**
   * @param {HTMLElement} parent where the editor goes
   * @param {object} o {spec, seconds, colour, label, onChange(editor), onRemove(editor)}
   */
  constructor(parent, { spec = '1.0', seconds = 30, colour = '#ff9f5a', onChange = () => {}, onRemove = null } = {}) {
    this.seconds = seconds;
    this.colour = colour;
    this.onChange = onChange;
    this.curve = { unit: 'fraction', positions: [0], values: [1.0] };
    this.drag = null;  // index of the point being dragged
    this.valid = true;
    this.checking = 0;
    this.el = document.createElement('div');
    this.el.className = 'curve-editor';
    this.el.innerHTML = `
      <div class="curve-head"><span class="swatch"></span><strong class="cname"></strong>
        <span class="clips-of"></span><span class="presets"></span>
        <button type="button" class="remove" title="remove this curve">remove</button></div>
      <canvas class="tcurve" tabindex="0" aria-label="temperature curve: drag the points"></canvas>
      <label class="spec-line">schedule <input class="spec mono" spellcheck="false"></label>
      <div class="field-error spec-error"></div>`;
    this.el.querySelector('.swatch').style.background = colour;
    for (const [name, text] of PRESETS) {
      const b = document.createElement('button');
      b.type = 'button';
      b.textContent = name;
      b.dataset.preset = text;
      b.addEventListener('click', () => this.setSpec(text));
      this.el.querySelector('.presets').appendChild(b);
    }
    const remove = this.el.querySelector('.remove');
    if (onRemove) remove.addEventListener('click', () => onRemove(this));
    else remove.hidden = true;
    this.canvas = this.el.querySelector('canvas');
    this.input = this.el.querySelector('.spec');
    this.errorEl = this.el.querySelector('.spec-error');
    let timer = null;
    this.input.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.check(this.input.value, { fromText: true }), 250);
    });
    this.input.addEventListener('change', () => { clearTimeout(timer); this.check(this.input.value, { fromText: true }); });
    this.canvas.addEventListener('pointerdown', (ev) => this.down(ev));
    this.canvas.addEventListener('pointermove', (ev) => this.move(ev));
    this.canvas.addEventListener('pointerup', (ev) => this.up(ev));
    this.canvas.addEventListener('pointercancel', (ev) => this.up(ev));
    this.canvas.addEventListener('dblclick', (ev) => this.dblclick(ev));
    this.canvas.addEventListener('keydown', (ev) => this.key(ev));
    this.selected = null;
    parent.appendChild(this.el);
    new ResizeObserver(() => this.draw()).observe(this.canvas);
    this.setSpec(spec);
  }

  get spec() { return this.input.value.trim(); }

  setLabel(name, clipsText, { removable = true } = {}) {
    this.el.querySelector('.cname').textContent = name;
    this.el.querySelector('.clips-of').textContent = clipsText;
    this.el.querySelector('.remove').hidden = !removable;
  }

  setSeconds(seconds) {
    if (seconds > 0 && Number.isFinite(seconds)) this.seconds = seconds;
    this.draw();
  }

  /** Show `text` and draw it once the server has parsed it. */
  setSpec(text) {
    this.input.value = text;
    return this.check(text, { fromText: true });
  }

  showError(message) {
    this.errorEl.textContent = message || '';
    this.input.classList.toggle('invalid', !!message);
    this.valid = !message;
  }

  /** Ask the server's parser (the command line's) about `text`; redraw from its answer. */
  async check(text, { fromText }) {
    const ticket = ++this.checking;
    try {
      const parsed = await postJSON('/api/schedule', { spec: text });
      if (ticket !== this.checking) return;
      this.showError('');
      if (fromText) {
        this.curve = { unit: parsed.unit, positions: parsed.positions, values: parsed.values };
        this.draw();
      }
    } catch (err) {
      if (ticket !== this.checking) return;
      this.showError(err instanceof ApiError ? err.message : String(err));
    }
    this.onChange(this);
  }

  // ---- geometry -------------------------------------------------------------------------------

  timeOf(i) { return this.curve.unit === 'fraction' ? this.curve.positions[i] * this.seconds : this.curve.positions[i]; }

  axes() {
    const vs = this.curve.values;
    const lastT = Math.max(...this.curve.positions.map((_, i) => this.timeOf(i)));
    if (!this.drag || !this.range) {
      const lo = Math.min(0.5, ...vs.map((v) => v - 0.1));
      const hi = Math.max(1.5, ...vs.map((v) => v + 0.1));
      this.range = { t1: lastT > this.seconds ? lastT * 1.05 : this.seconds, lo: Math.max(0, lo), hi };
    }
    return this.range;
  }

  xy(t, v) {
    const { t1, lo, hi } = this.range;
    return [PAD.l + (t / t1) * (this.w - PAD.l - PAD.r), PAD.t + (1 - (v - lo) / (hi - lo)) * (this.h - PAD.t - PAD.b)];
  }

  tv(x, y) {
    const { t1, lo, hi } = this.range;
    const t = ((x - PAD.l) / (this.w - PAD.l - PAD.r)) * t1;
    const v = lo + (1 - (y - PAD.t) / (this.h - PAD.t - PAD.b)) * (hi - lo);
    return [t, v];
  }

  local(ev) {
    const r = this.canvas.getBoundingClientRect();
    return [ev.clientX - r.left, ev.clientY - r.top];
  }

  hit(x, y) {
    let best = null;
    let bestD = HIT_PX;
    this.curve.values.forEach((v, i) => {
      const [px, py] = this.xy(this.timeOf(i), v);
      const d = Math.hypot(px - x, py - y);
      if (d <= bestD) { best = i; bestD = d; }
    });
    return best;
  }

  // ---- drawing --------------------------------------------------------------------------------

  draw() {
    const { ctx, w, h } = sharpCanvas(this.canvas, 640, 170);
    this.w = w;
    this.h = h;
    const { t1, lo, hi } = this.axes();
    ctx.font = '11px system-ui, sans-serif';
    // grid: temperature every 0.25 (0.1 when the range is narrow), time at a round step
    const vStep = hi - lo > 0.6 ? 0.25 : 0.1;
    ctx.strokeStyle = '#323743';
    ctx.fillStyle = '#9aa1ae';
    ctx.lineWidth = 1;
    for (let v = Math.ceil(lo / vStep) * vStep; v <= hi + 1e-9; v += vStep) {
      const [, y] = this.xy(0, v);
      ctx.beginPath(); ctx.moveTo(PAD.l, y); ctx.lineTo(w - PAD.r, y); ctx.stroke();
      ctx.fillText(v.toFixed(2), 4, y + 4);
    }
    const tStep = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600].find((s) => t1 / s <= 8) || 1200;
    for (let t = 0; t <= t1 + 1e-9; t += tStep) {
      const [x] = this.xy(t, lo);
      ctx.beginPath(); ctx.moveTo(x, PAD.t); ctx.lineTo(x, h - PAD.b); ctx.stroke();
      ctx.fillText(`${trim(t, 2)} s`, x - 8, h - 6);
    }
    // 1.0: the model's own distribution
    ctx.strokeStyle = '#59606e';
    ctx.setLineDash([4, 4]);
    const [, y1] = this.xy(0, 1);
    ctx.beginPath(); ctx.moveTo(PAD.l, y1); ctx.lineTo(w - PAD.r, y1); ctx.stroke();
    ctx.setLineDash([]);
    // past the clip's end (a seconds curve may reach beyond it): shaded
    if (t1 > this.seconds) {
      const [xe] = this.xy(this.seconds, lo);
      ctx.fillStyle = 'rgba(0, 0, 0, 0.35)';
      ctx.fillRect(xe, PAD.t, w - PAD.r - xe, h - PAD.t - PAD.b);
    }
    // the curve: it holds its value before the first point and after the last
    const pts = this.curve.values.map((v, i) => this.xy(this.timeOf(i), v));
    ctx.strokeStyle = this.valid ? this.colour : '#777';
    ctx.lineWidth = 2.5;
    ctx.beginPath();
    ctx.moveTo(PAD.l, pts[0][1]);
    for (const [x, y] of pts) ctx.lineTo(x, y);
    ctx.lineTo(w - PAD.r, pts[pts.length - 1][1]);
    ctx.stroke();
    pts.forEach(([x, y], i) => {
      ctx.beginPath();
      ctx.arc(x, y, i === this.selected ? 6 : 4.5, 0, 2 * Math.PI);
      ctx.fillStyle = i === this.selected ? '#ffffff' : this.colour;
      ctx.fill();
      ctx.strokeStyle = '#15171c';
      ctx.lineWidth = 1.5;
      ctx.stroke();
    });
    // For tests and scripts: the points as drawn, in seconds.
    this.canvas.dataset.points = JSON.stringify(this.curve.values.map((v, i) => [Number(this.timeOf(i).toFixed(4)), v]));
    this.canvas.dataset.plot = JSON.stringify({ l: PAD.l, r: PAD.r, t: PAD.t, b: PAD.b, w, h, t1, lo, hi });
  }

  // ---- editing --------------------------------------------------------------------------------

  /** Write the drawn curve as schedule text (and have the server check it). */
  written() {
    const text = specOf(this.curve);
    this.input.value = text;
    this.check(text, { fromText: false });
  }

  snapT(t) {
    const step = this.seconds >= 10 ? 0.1 : 0.01;
    return Math.round(t / step) * step;
  }

  place(i, t, v) {
    const c = this.curve;
    const snappedV = Math.min(V_MAX, Math.max(V_MIN, Math.round(v / 0.005) * 0.005));
    c.values[i] = Number(snappedV.toFixed(3));
    if (c.positions.length === 1) return;  // a constant has no position to move
    const fraction = c.unit === 'fraction';
    const eps = fraction ? 0.001 : 0.01;
    let p = fraction ? Math.round((t / this.seconds) / 0.005) * 0.005 : this.snapT(t);
    const lo = i > 0 ? c.positions[i - 1] + eps : 0;
    const hi = i < c.positions.length - 1 ? c.positions[i + 1] - eps : (fraction ? 1 : this.range.t1);
    p = Math.min(hi, Math.max(lo, p));
    c.positions[i] = Number(p.toFixed(fraction ? 4 : 2));
  }

  down(ev) {
    if (ev.button !== 0) return;
    const [x, y] = this.local(ev);
    const i = this.hit(x, y);
    this.selected = i;
    if (i === null) { this.draw(); return; }
    this.drag = { index: i };
    this.canvas.setPointerCapture(ev.pointerId);
    this.canvas.classList.add('dragging');
    ev.preventDefault();
    this.draw();
  }

  move(ev) {
    const [x, y] = this.local(ev);
    if (!this.drag) {
      this.canvas.style.cursor = this.hit(x, y) === null ? 'crosshair' : 'grab';
      return;
    }
    let [t, v] = this.tv(x, y);
    const [x0] = this.xy(0, 0);
    const [xEnd] = this.xy(this.seconds, 0);
    if (Math.abs(x - x0) < HIT_PX) t = 0;  // the ends are easy to hit exactly
    else if (Math.abs(x - xEnd) < HIT_PX) t = this.seconds;
    this.place(this.drag.index, t, v);
    this.input.value = specOf(this.curve);
    this.draw();
  }

  up(ev) {
    if (!this.drag) return;
    this.drag = null;
    this.canvas.classList.remove('dragging');
    if (this.canvas.hasPointerCapture(ev.pointerId)) this.canvas.releasePointerCapture(ev.pointerId);
    this.range = null;
    this.written();
    this.draw();
  }

  dblclick(ev) {
    const [x, y] = this.local(ev);
    const i = this.hit(x, y);
    const c = this.curve;
    if (i !== null) {
      this.remove(i);
      return;
    }
    const [t, v] = this.tv(x, y);
    if (c.positions.length === 1) {  // a constant becomes a curve in seconds
      c.unit = 'seconds';
      c.positions = [0];
    }
    const fraction = c.unit === 'fraction';
    const p = fraction ? t / this.seconds : t;
    if (p < 0 || (fraction && p > 1)) return;
    let at = c.positions.findIndex((q) => q > p);
    if (at < 0) at = c.positions.length;
    if ((at > 0 && Math.abs(c.positions[at - 1] - p) < 1e-3) || (at < c.positions.length && Math.abs(c.positions[at] - p) < 1e-3)) return;
    c.positions.splice(at, 0, p);
    c.values.splice(at, 0, v);
    this.place(at, t, v);
    this.selected = at;
    this.written();
    this.draw();
  }

  remove(i) {
    const c = this.curve;
    if (c.positions.length <= 1) return;
    c.positions.splice(i, 1);
    c.values.splice(i, 1);
    if (c.positions.length === 1) this.curve = { unit: 'fraction', positions: [0], values: [c.values[0]] };
    this.selected = null;
    this.written();
    this.draw();
  }

  key(ev) {
    if (this.selected === null) return;
    const i = this.selected;
    const step = ev.shiftKey ? 0.05 : 0.005;
    if (ev.key === 'Delete' || ev.key === 'Backspace') { this.remove(i); ev.preventDefault(); return; }
    if (ev.key === 'ArrowUp' || ev.key === 'ArrowDown') {
      this.axes();
      this.place(i, this.timeOf(i), this.curve.values[i] + (ev.key === 'ArrowUp' ? step : -step));
      this.written();
      this.draw();
      ev.preventDefault();
    }
  }
}
