// Waveforms (wavesurfer.js, vendored) drawn from peaks the server computed, spectrograms drawn
// on a canvas from the server's uint8 bands, and the rule that one thing plays at a time.

import WaveSurfer from './vendor/wavesurfer/wavesurfer.esm.js';
import RegionsPlugin from './vendor/wavesurfer/plugins/regions.esm.js';
import TimelinePlugin from './vendor/wavesurfer/plugins/timeline.esm.js';
import HoverPlugin from './vendor/wavesurfer/plugins/hover.esm.js';
import { bytes, clock, getJSON } from './api.js';

// ---- waveform data (peaks + spectrogram), fetched once per file and kept a while ----------

const waveforms = new Map();  // url -> Promise<data>
const MAX_KEPT = 400;

export function loadWaveform(url) {
  let p = waveforms.get(url);
  if (p) {
    waveforms.delete(url);  // most recently used last
    waveforms.set(url, p);
    return p;
  }
  p = getJSON(url).then((data) => {
    const raw = bytes(data.peaks.data);
    const peaks = new Float32Array(raw.length);
    for (let i = 0; i < raw.length; i++) peaks[i] = raw[i] / 255;
    return { ...data, peakValues: peaks, specValues: bytes(data.spectrogram.data) };
  });
  p.catch(() => waveforms.delete(url));
  waveforms.set(url, p);
  while (waveforms.size > MAX_KEPT) waveforms.delete(waveforms.keys().next().value);
  return p;
}

// ---- one player at a time ------------------------------------------------------------------

let playing = null;  // the media element playing now
export function claim(media) {
  if (playing && playing !== media && !playing.paused) playing.pause();
  playing = media;
}

/** A hidden <audio> that loads nothing until asked to play (hundreds of cards, no requests). */
export function quietAudio(url, parent) {
  const media = document.createElement('audio');
  media.preload = 'none';
  media.src = url;
  media.addEventListener('play', () => claim(media));
  parent.appendChild(media);
  return media;
}

/**
 * A wavesurfer in `container` for `audioUrl`, drawn from precomputed `data` (loadWaveform).
 * Returns { ws, regions, media } once it is ready.
 */
export async function createWave(container, audioUrl, data, { height = 72, timeline = true, hover = true } = {}) {
  const media = quietAudio(audioUrl, container.parentElement || container);
  const regions = RegionsPlugin.create();
  const plugins = [regions];
  if (timeline) {
    // About eight labelled seconds across, whatever the clip's length (the plugin's own choice
    // depends on pixels per second and labels a 5-s clip only at 0).
    const label = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => data.duration / s <= 10) || 600;
    plugins.push(TimelinePlugin.create({
      height: 16,
      timeInterval: label / 2,
      primaryLabelInterval: label,
      secondaryLabelInterval: label,
      style: { fontSize: '10px', color: '#9aa1ae' },
    }));
  }
  if (hover) {
    plugins.push(HoverPlugin.create({
      lineColor: '#ffffffaa', lineWidth: 1, labelBackground: '#000c', labelColor: '#fff', labelSize: '10px',
      formatTimeCallback: clock,
    }));
  }
  const ws = WaveSurfer.create({
    container,
    height,
    media,
    peaks: [data.peakValues],
    duration: data.duration,
    waveColor: '#8b93a7',
    progressColor: '#7cc4ff',
    cursorColor: '#ffffff',
    cursorWidth: 1,
    normalize: false,
    interact: true,
    dragToSeek: false,
    plugins,
  });
  await new Promise((resolve) => {
    if (ws.getDuration() > 0) resolve();
    else ws.once('ready', resolve);
  });
  return { ws, regions, media };
}

// ---- spectrogram + temperature curve on the waveform's time axis ---------------------------

// 256 colours from dark blue through magenta to pale yellow (magma-like), made once.
const PALETTE = (() => {
  const stops = [[0, [10, 10, 22]], [0.3, [60, 20, 110]], [0.55, [170, 45, 120]], [0.8, [250, 130, 80]], [1, [252, 245, 190]]];
  const out = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) {
    const t = i / 255;
    let k = 0;
    while (k < stops.length - 2 && t > stops[k + 1][0]) k++;
    const [t0, c0] = stops[k];
    const [t1, c1] = stops[k + 1];
    const f = (t - t0) / (t1 - t0);
    for (let c = 0; c < 3; c++) out[3 * i + c] = c0[c] + f * (c1[c] - c0[c]);
  }
  return out;
})();

/** Draw `data.spectrogram` into `canvas` (time left to right, low bands at the bottom). */
export function drawSpectrogram(canvas, data) {
  const { columns, bands } = data.spectrogram;
  const values = data.specValues;
  canvas.width = columns;
  canvas.height = bands;
  const ctx = canvas.getContext('2d');
  const image = ctx.createImageData(columns, bands);
  const px = image.data;
  for (let x = 0; x < columns; x++) {
    for (let b = 0; b < bands; b++) {
      const v = values[x * bands + b];
      const o = 4 * ((bands - 1 - b) * columns + x);
      px[o] = PALETTE[3 * v]; px[o + 1] = PALETTE[3 * v + 1]; px[o + 2] = PALETTE[3 * v + 2]; px[o + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}

/**
 * A cleared 2-D context on `canvas` at the screen's pixel density, drawing in CSS pixels
 * (w x h: the canvas's laid-out size, or the defaults before layout).
 */
export function sharpCanvas(canvas, defaultW, defaultH) {
  const w = canvas.clientWidth || defaultW;
  const h = canvas.clientHeight || defaultH;
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext('2d');
  ctx.scale(dpr, dpr);
  ctx.clearRect(0, 0, w, h);
  return { ctx, w, h };
}

/**
 * Draw a temperature curve {times_s, values} over `canvas` (a second canvas stacked on the
 * spectrogram), on the clip's time axis [0, duration] and the temperature range [lo, hi].
 */
export function drawTemperature(canvas, curve, duration, [lo, hi]) {
  const { ctx, w, h } = sharpCanvas(canvas, 600, 50);
  if (!curve || !curve.times_s || curve.times_s.length === 0 || !(duration > 0)) return;
  const y = (v) => h - 3 - ((v - lo) / Math.max(hi - lo, 1e-6)) * (h - 6);
  const x = (t) => (t / duration) * w;
  ctx.lineWidth = 2;
  ctx.strokeStyle = '#ffffff';
  ctx.shadowColor = '#000';
  ctx.shadowBlur = 3;
  ctx.beginPath();
  const ts = curve.times_s;
  const vs = curve.values;
  ctx.moveTo(x(ts[0]), y(vs[0]));
  for (let i = 1; i < ts.length; i++) ctx.lineTo(x(ts[i]), y(vs[i]));
  if (ts[ts.length - 1] < duration) ctx.lineTo(x(duration), y(vs[vs.length - 1]));
  ctx.stroke();
}

/** Distinct, stable colours per source track name. */
export function trackColour(name, alpha = 1) {
  let h = 0;
  for (const ch of String(name)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  const hue = (h * 137.508) % 360;
  return `hsla(${hue.toFixed(0)}, 75%, 62%, ${alpha})`;
}
