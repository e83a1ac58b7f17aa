// The arranger's preview mix, computed the way `inspire compose` renders (compose/master.py),
// so what the page plays is what the render will sound like:
//
//   - each part is samples round(in_s * sr) .. round(out_s * sr) of its clip (Python's round:
//     half to even), times 10^(gain_db / 20);
//   - part k+1 starts `crossfade_s` of part k before part k ends; the overlap fades with
//     equal-power gains cos / sin of (pi/2) * (j + 0.5) / n, so out^2 + in^2 = 1 everywhere;
//   - a butt join dips through a 4 ms half-Hann fade either side; the piece fades in and out
//     over fade_in_s / fade_out_s (half-Hann), at least 4 ms;
//   - then loudness is normalised to `lufs` (ITU-R BS.1770: K-weighting, 400 ms blocks, the
//     -70 LUFS and -10 LU gates, as pyloudnorm measures) under a limiter holding peaks under
//     `true_peak` (the renderer's look-ahead limiter: 12 ms hold, two 6 ms moving averages).
//
// Differences, said in the page: noise reduction (noisereduce) is not previewed, and the
// limiter here watches sample peaks where the renderer watches 4x oversampled (true) peaks.
// Written by hand: no browser library renders crossfades by this law or measures BS.1770.
// Pure functions over Float32Arrays; no DOM.

export const EDGE_FADE_S = 0.004;
const LIMITER_MARGIN_DB = 0.2;

/** Python's round(): to the nearest integer, halves to even. */
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function ramp(n) {  // a half-Hann rise over n samples
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = 0.5 - 0.5 * Math.cos(Math.PI * (j + 0.5) / Math.max(n, 1));
  return out;
}

/**
 * The parts' spans and places, checked as the renderer checks them. `parts`: [{samples
 * (Float32Array of the whole clip at sr), in_s, out_s (null: the clip's end), gain_db,
 * crossfade_s}]; `top`: {fade_in_s, fade_out_s}. Returns {lengths, starts, total, xf, fadeIn,
 * fadeOut} or throws an Error saying which part and field is wrong (compose's words).
 */
export function layout(parts, top, sr) {
  const lengths = parts.map((p, i) => {
    const native = p.samples.length / sr;
    if (p.in_s >= native) throw fieldError(i, 'in_s', `in_s = ${p.in_s} is at or beyond the clip's end (${native.toFixed(3)} s)`);
    if (p.out_s !== null && p.out_s > native + 1e-3) throw fieldError(i, 'out_s', `out_s = ${p.out_s} is beyond the clip's end (${native.toFixed(3)} s)`);
    const i0 = pyRound(p.in_s * sr);
    const i1 = Math.min(p.samples.length, pyRound((p.out_s === null ? native : p.out_s) * sr));
    if (i1 - i0 < 1) throw fieldError(i, 'out_s', 'the part is shorter than one sample');
    return i1 - i0;
  });
  const xf = parts.map((p) => pyRound(p.crossfade_s * sr));
  const edge = pyRound(EDGE_FADE_S * sr);
  lengths.forEach((n, i) => {
    const into = i ? xf[i - 1] : 0;
    if (xf[i] > 0 && (i + 1 >= lengths.length || xf[i] > lengths[i + 1])) {
      throw fieldError(i, 'crossfade_s', i + 1 >= lengths.length ? 'the last part has nothing to fade into'
        : `${parts[i].crossfade_s} s is longer than the next part (${(lengths[i + 1] / sr).toFixed(3)} s)`);
    }
    if (into + xf[i] > n) {
      throw fieldError(i, 'crossfade_s', `the crossfade in (${(into / sr).toFixed(3)} s) and out (${(xf[i] / sr).toFixed(3)} s) `
        + `overlap: together longer than the part (${(n / sr).toFixed(3)} s)`);
    }
  });
  const last = lengths.length - 1;
  const fadeIn = Math.max(pyRound(top.fade_in_s * sr), Math.min(edge, Math.floor(lengths[0] / 4)));
  const fadeOut = Math.max(pyRound(top.fade_out_s * sr), Math.min(edge, Math.floor(lengths[last] / 4)));
  if (fadeIn > lengths[0] - xf[0]) throw fieldError(null, 'fade_in_s', `${top.fade_in_s} s is longer than part 1 before its crossfade`);
  if (fadeOut > lengths[last] - (last ? xf[last - 1] : 0) - (last === 0 ? fadeIn : 0)) {
    throw fieldError(null, 'fade_out_s', `${top.fade_out_s} s is longer than the last part after its crossfade`);
  }
  const starts = [0];
  for (let i = 1; i < lengths.length; i++) starts.push(starts[i - 1] + lengths[i - 1] - xf[i - 1]);
  return { lengths, starts, total: starts[last] + lengths[last], xf, fadeIn, fadeOut, edge };
}

function fieldError(part, field, message) {
  const where = part === null ? field : `part ${part + 1}: ${field}`;
  const err = new Error(`${where}: ${message}`);
  err.part = part;
  err.field = field;
  return err;
}

/** Each part's gain envelope, exactly as master.render's envelope(i). */
export function envelope(i, lay) {
  const { lengths, xf, fadeIn, fadeOut, edge } = lay;
  const n = lengths[i];
  const last = lengths.length - 1;
  const env = new Float64Array(n).fill(1);
  let head = i === 0 ? fadeIn : xf[i - 1];
  let tail = i === last ? fadeOut : xf[i];
  if (i === 0 || xf[i - 1] === 0) {
    head = i === 0 ? head : Math.min(edge, Math.floor(n / 4));
    const r = ramp(head);
    for (let j = 0; j < head; j++) env[j] *= r[j];
  } else {
    for (let j = 0; j < head; j++) env[j] *= Math.sin(0.5 * Math.PI * (j + 0.5) / head);
  }
  if (i === last || xf[i] === 0) {
    tail = i === last ? tail : Math.min(edge, Math.floor(n / 4));
    const r = ramp(tail);
    for (let j = 0; j < tail; j++) env[n - tail + j] *= r[tail - 1 - j];
  } else {
    for (let j = 0; j < tail; j++) env[n - tail + j] *= Math.cos(0.5 * Math.PI * (j + 0.5) / tail);
  }
  return env;
}

/** The parts spliced, faded and summed, before mastering: {mix (Float64Array), layout}. */
export function mixdown(parts, top, sr) {
  const lay = layout(parts, top, sr);
  const mix = new Float64Array(lay.total);
  parts.forEach((p, i) => {
    const env = envelope(i, lay);
    const g = 10 ** (p.gain_db / 20);
    const i0 = pyRound(p.in_s * sr);
    const s = lay.starts[i];
    for (let j = 0; j < lay.lengths[i]; j++) mix[s + j] += p.samples[i0 + j] * g * env[j];
  });
  return { mix, layout: lay };
}

// ---- loudness (BS.1770, as pyloudnorm measures it) -----------------------------------------

function biquad(x, [b0, b1, b2], [a0, a1, a2]) {  // scipy.signal.lfilter, transposed direct form II
  const out = new Float64Array(x.length);
  const B0 = b0 / a0, B1 = b1 / a0, B2 = b2 / a0, A1 = a1 / a0, A2 = a2 / a0;
  let z1 = 0, z2 = 0;
  for (let i = 0; i < x.length; i++) {
    const y = B0 * x[i] + z1;
    z1 = B1 * x[i] - A1 * y + z2;
    z2 = B2 * x[i] - A2 * y;
    out[i] = y;
  }
  return out;
}

function kWeighting(x, sr) {
  // pyloudnorm's IIRfilter(4.0, 1/sqrt(2), 1500, 'high_shelf') then (0.0, 0.5, 38, 'high_pass').
  let A = 10 ** (4.0 / 40), w0 = 2 * Math.PI * 1500 / sr, alpha = Math.sin(w0) / (2 * Math.SQRT1_2), c = Math.cos(w0);
  const shelf = biquad(x, [
    A * ((A + 1) + (A - 1) * c + 2 * Math.sqrt(A) * alpha), -2 * A * ((A - 1) + (A + 1) * c),
    A * ((A + 1) + (A - 1) * c - 2 * Math.sqrt(A) * alpha)], [
    (A + 1) - (A - 1) * c + 2 * Math.sqrt(A) * alpha, 2 * ((A - 1) - (A + 1) * c),
    (A + 1) - (A - 1) * c - 2 * Math.sqrt(A) * alpha]);
  A = 1; w0 = 2 * Math.PI * 38 / sr; alpha = Math.sin(w0) / (2 * 0.5); c = Math.cos(w0);
  return biquad(shelf, [(1 + c) / 2, -(1 + c), (1 + c) / 2], [1 + alpha, -2 * c, 1 - alpha]);
}

/** Integrated loudness in LUFS (mono), or -Infinity for silence. */
export function integratedLoudness(x, sr) {
  const y = kWeighting(x, sr);
  const block = 0.4;
  const T = y.length / sr;
  const count = Math.round((T - block) / (block * 0.25)) + 1;
  const z = new Float64Array(Math.max(0, count));
  const sq = new Float64Array(y.length + 1);  // prefix sums of squares
  for (let i = 0; i < y.length; i++) sq[i + 1] = sq[i] + y[i] * y[i];
  for (let j = 0; j < count; j++) {
    const lo = Math.trunc(block * (j * 0.25) * sr);
    const hi = Math.min(y.length, Math.trunc(block * (j * 0.25 + 1) * sr));
    z[j] = (sq[hi] - sq[lo]) / (block * sr);
  }
  const lufs = (v) => -0.691 + 10 * Math.log10(v);
  const gated = (threshold) => {
    let sum = 0, k = 0;
    for (let j = 0; j < count; j++) if (lufs(z[j]) > threshold && lufs(z[j]) >= -70) { sum += z[j]; k++; }
    return k ? sum / k : 0;
  };
  const relative = lufs(gated(-70 - 1e-9)) - 10;
  const result = gated(relative);
  return result > 0 ? lufs(result) : -Infinity;
}

// ---- the limiter ----------------------------------------------------------------------------

function minFilter(x, size) {  // scipy.ndimage.minimum_filter1d, mode 'nearest' (a monotonic deque)
  const n = x.length, h = size >> 1, out = new Float64Array(n), q = new Int32Array(n + 2 * h);
  const e = (k) => x[Math.min(n - 1, Math.max(0, k - h))];  // x extended by its edge values
  let head = 0, tail = 0;
  for (let k = 0; k < n + 2 * h; k++) {
    while (tail > head && e(q[tail - 1]) >= e(k)) tail--;
    q[tail++] = k;
    if (q[head] <= k - size) head++;
    if (k >= size - 1) out[k - size + 1] = e(q[head]);
  }
  return out;
}

function meanFilter(x, size) {  // scipy.ndimage.uniform_filter1d, mode 'nearest'
  const n = x.length, h = size >> 1, out = new Float64Array(n);
  const at = (i) => x[Math.min(n - 1, Math.max(0, i))];
  let sum = 0;
  for (let i = -h; i <= h; i++) sum += at(i);
  for (let i = 0; i < n; i++) {
    out[i] = sum / size;
    sum += at(i + h + 1) - at(i - h);
  }
  return out;
}

function limiterGain(x, sr, ceiling) {
  const need = new Float64Array(x.length);
  let least = 1;
  for (let i = 0; i < x.length; i++) { need[i] = Math.min(1, ceiling / Math.max(Math.abs(x[i]), 1e-12)); least = Math.min(least, need[i]); }
  if (least >= 1) return null;  // nothing to limit
  const hold = Math.max(1, Math.trunc(0.012 * sr));
  let g = minFilter(need, 2 * hold + 1);
  for (let k = 0; k < 2; k++) g = meanFilter(g, 2 * (hold >> 1) + 1);
  for (let i = 0; i < g.length; i++) g[i] = Math.min(g[i], need[i]);
  return g;
}

/**
 * Loudness-normalise `mix` to `lufs` under the `truePeak` ceiling (dBFS of sample peaks here),
 * as master.normalize_loudness does. Returns {audio (Float32Array), lufs (measured before), gainDb}.
 */
export function master(mix, sr, { lufs, truePeak }) {
  const out = new Float32Array(mix.length);
  if (mix.length < Math.trunc(0.4 * sr) + 1) { out.set(mix); return { audio: out, measured: null, gainDb: 0 }; }
  const measured = integratedLoudness(mix, sr);
  if (!Number.isFinite(measured) || measured < -70) { out.set(mix); return { audio: out, measured: null, gainDb: 0 }; }
  const ceiling = 10 ** ((truePeak - LIMITER_MARGIN_DB) / 20);
  let gainDb = lufs - measured;
  let y = null;
  for (let k = 0; k < 8; k++) {
    const gain = 10 ** (gainDb / 20);
    const scaled = new Float64Array(mix.length);
    for (let i = 0; i < mix.length; i++) scaled[i] = mix[i] * gain;
    const lim = limiterGain(scaled, sr, ceiling);
    if (lim) for (let i = 0; i < mix.length; i++) scaled[i] *= lim[i];
    y = scaled;
    const got = integratedLoudness(y, sr);
    if (!lim || Math.abs(got - lufs) < 0.05) break;
    gainDb += lufs - got;
  }
  out.set(y);
  return { audio: out, measured, gainDb };
}
