// A rotary knob drawn by hand in SVG (no vendored library draws one without a build step):
// drag up/down (Shift: finer), the mouse wheel, or the keyboard when focused (arrows 0.01,
// Shift+arrows and PageUp/PageDown 0.1, Home/End the ends); double-click returns to `home`.
// An ARIA slider, so it is reachable and readable without a mouse.
//
//   const k = new Knob(el, { min: 0.5, max: 1.5, value: 1.0, home: 1.0, label: 'temperature',
//                            onInput: (v) => ... });
//   k.set(1.2)           moves it without calling onInput (a value from elsewhere: the engine)
//   k.setRange(lo, hi)   the values its sweep covers (a value outside is shown at the end stop)

const SVG = 'http://www.w3.org/2000/svg';
const SWEEP = 270;  // degrees from the minimum to the maximum
const START = 135;  // where the minimum sits (degrees clockwise from 3 o'clock)
const DRAG_PX = 200;  // pixels of drag for the whole range

function polar(cx, cy, r, deg) {
  const a = (deg * Math.PI) / 180;
  return [cx + r * Math.cos(a), cy + r * Math.sin(a)];
}

function arc(cx, cy, r, from, to) {
  const [x0, y0] = polar(cx, cy, r, from);
  const [x1, y1] = polar(cx, cy, r, to);
  const large = to - from > 180 ? 1 : 0;
  return `M ${x0.toFixed(2)} ${y0.toFixed(2)} A ${r} ${r} 0 ${large} 1 ${x1.toFixed(2)} ${y1.toFixed(2)}`;
}

export class Knob {
  constructor(el, { min = 0, max = 1, value = 0.5, home = null, step = 0.01, label = '', decimals = 2,
    onInput = () => {} } = {}) {
    this.el = el;
    this.min = min;
    this.max = max;
    this.step = step;
    this.home = home === null ? value : home;
    this.decimals = decimals;
    this.onInput = onInput;
    this.value = value;
    el.classList.add('knob');
    el.tabIndex = 0;
    el.setAttribute('role', 'slider');
    el.setAttribute('aria-label', label);
    el.innerHTML = '';
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', '0 0 100 100');
    const make = (tag, attrs) => {
      const node = document.createElementNS(SVG, tag);
      for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
      svg.appendChild(node);
      return node;
    };
    make('path', { d: arc(50, 50, 40, START, START + SWEEP), class: 'knob-track' });
    this.fill = make('path', { class: 'knob-fill' });
    make('circle', { cx: 50, cy: 50, r: 30, class: 'knob-cap' });
    this.pointer = make('line', { x1: 50, y1: 29, x2: 50, y2: 21, class: 'knob-pointer' });  // a tick at the cap's edge
    this.text = make('text', { x: 50, y: 55, 'text-anchor': 'middle', class: 'knob-value' });
    el.appendChild(svg);
    this.bind();
    this.draw();
  }

  setRange(min, max) {
    this.min = min;
    this.max = max;
    this.draw();
  }

  set(v) {
    this.value = v;
    this.draw();
  }

  input(v) {
    const clamped = Math.min(Math.max(Math.round(v / this.step) * this.step, this.min), this.max);
    if (Math.abs(clamped - this.value) < 1e-9) return;
    this.value = clamped;
    this.draw();
    this.onInput(this.value);
  }

  draw() {
    const span = this.max - this.min || 1;
    const frac = Math.min(Math.max((this.value - this.min) / span, 0), 1);
    const deg = START + frac * SWEEP;
    this.fill.setAttribute('d', frac > 0.002 ? arc(50, 50, 40, START, deg) : '');
    this.pointer.setAttribute('transform', `rotate(${deg + 90} 50 50)`);
    this.text.textContent = this.value.toFixed(this.decimals);
    this.el.setAttribute('aria-valuemin', String(this.min));
    this.el.setAttribute('aria-valuemax', String(this.max));
    this.el.setAttribute('aria-valuenow', this.value.toFixed(this.decimals));
    this.el.dataset.value = this.value.toFixed(6);
  }

  bind() {
    const el = this.el;
    let drag = null;
    el.addEventListener('pointerdown', (ev) => {
      if (ev.button !== 0) return;
      el.focus();
      el.setPointerCapture(ev.pointerId);
      drag = { y: ev.clientY, value: this.value };
      el.classList.add('dragging');
      ev.preventDefault();
    });
    el.addEventListener('pointermove', (ev) => {
      if (!drag) return;
      const fine = ev.shiftKey ? 0.1 : 1;
      this.input(drag.value + ((drag.y - ev.clientY) / DRAG_PX) * (this.max - this.min) * fine);
    });
    const end = (ev) => {
      if (!drag) return;
      drag = null;
      el.classList.remove('dragging');
      if (el.hasPointerCapture(ev.pointerId)) el.releasePointerCapture(ev.pointerId);
    };
    el.addEventListener('pointerup', end);
    el.addEventListener('pointercancel', end);
    el.addEventListener('wheel', (ev) => {
      ev.preventDefault();
      const dir = ev.deltaY < 0 ? 1 : -1;
      this.input(this.value + dir * this.step * (ev.shiftKey ? 1 : 2));
    }, { passive: false });
    el.addEventListener('dblclick', () => this.input(this.home));
    el.addEventListener('keydown', (ev) => {
      const big = 10 * this.step;
      const moves = {
        ArrowUp: this.step, ArrowRight: this.step, ArrowDown: -this.step, ArrowLeft: -this.step,
        PageUp: big, PageDown: -big,
      };
      let target = null;
      if (ev.key in moves) target = this.value + moves[ev.key] * (ev.shiftKey && Math.abs(moves[ev.key]) === this.step ? 10 : 1);
      else if (ev.key === 'Home') target = this.min;
      else if (ev.key === 'End') target = this.max;
      if (target === null) return;
      ev.preventDefault();
      ev.stopPropagation();  // the knob's keys, not the page's
      this.input(target);
    });
  }
}
