// Hearing an arrangement before rendering it: the clips decoded at the piece's sample rate
// (an OfflineAudioContext at that rate decodes a clip made at it sample for sample), mixed and
// mastered by mixdown.js the way compose renders, and played with Web Audio from any point.
// One thing plays at a time across the studio (wave.claim).

import { master, mixdown } from './mixdown.js';
import { claim } from './wave.js';

const decoded = new Map();  // "sr url" -> Promise<Float32Array>
const MAX_DECODED = 64;

/** A clip's samples, mono, at `sr` (cached). */
export function decode(url, sr) {
  const key = `${sr} ${url}`;
  let p = decoded.get(key);
  if (p) return p;
  p = (async () => {
    const response = await fetch(url, { credentials: 'same-origin' });
    if (!response.ok) throw new Error(`${url}: ${response.status} ${response.statusText}`);
    const data = await response.arrayBuffer();
    const audio = await new OfflineAudioContext(1, 1, sr).decodeAudioData(data);
    if (audio.numberOfChannels === 1) return audio.getChannelData(0);
    const out = new Float32Array(audio.length);
    for (let c = 0; c < audio.numberOfChannels; c++) {
      const ch = audio.getChannelData(c);
      for (let i = 0; i < out.length; i++) out[i] += ch[i] / audio.numberOfChannels;
    }
    return out;
  })();
  p.catch(() => decoded.delete(key));
  decoded.set(key, p);
  while (decoded.size > MAX_DECODED) decoded.delete(decoded.keys().next().value);
  return p;
}

/**
 * The arrangement as it will sound: `parts` [{url, in_s, out_s, gain_db, crossfade_s}], `top`
 * {fade_in_s, fade_out_s, lufs, true_peak}. Returns {audio (Float32Array), sr, starts (s),
 * measured (LUFS before), gainDb}; throws an Error naming the part and field when the
 * renderer would refuse the arrangement.
 */
export async function build(parts, top, sr) {
  const samples = await Promise.all(parts.map((p) => decode(p.url, sr)));
  const { mix, layout } = mixdown(parts.map((p, i) => ({ ...p, samples: samples[i] })), top, sr);
  const mastered = master(mix, sr, { lufs: top.lufs, truePeak: top.true_peak });
  return { ...mastered, sr, starts: layout.starts.map((s) => s / sr), seconds: mix.length / sr };
}

/** Plays one built mix from any point; `time` is where it is now (seconds of the piece). */
export class Player {
  constructor({ onEnd } = {}) {
    this.ctx = null;
    this.source = null;
    this.buffer = null;
    this.offset = 0;     // piece seconds at this.startedAt
    this.startedAt = 0;  // ctx.currentTime when it started
    this.onEnd = onEnd;
    // What the studio's one-player rule pauses when something else starts playing.
    const self = this;
    this.handle = { pause() { self.stop(); }, get paused() { return !self.playing; } };
  }

  get playing() { return this.source !== null; }

  get time() {
    if (!this.playing) return this.offset;
    return Math.min(this.offset + this.ctx.currentTime - this.startedAt, this.buffer.duration);
  }

  /** Use `audio` (Float32Array at `sr`) from now on; keeps playing from the same moment. */
  load(audio, sr) {
    if (!this.ctx) this.ctx = new AudioContext({ latencyHint: 'interactive' });
    const at = this.time;
    const was = this.playing;
    this.stop();
    this.buffer = this.ctx.createBuffer(1, Math.max(1, audio.length), sr);
    this.buffer.copyToChannel(audio, 0);
    this.offset = Math.min(at, this.buffer.duration);
    if (was) this.play(this.offset);
  }

  play(from = this.offset) {
    if (!this.buffer) return;
    this.stop();
    claim(this.handle);
    if (this.ctx.state === 'suspended') this.ctx.resume();
    const source = this.ctx.createBufferSource();
    source.buffer = this.buffer;
    source.connect(this.ctx.destination);
    this.offset = Math.max(0, Math.min(from, this.buffer.duration));
    this.startedAt = this.ctx.currentTime;
    source.onended = () => {
      if (this.source !== source) return;  // stopped on purpose, or replaced
      this.source = null;
      this.offset = this.buffer.duration;
      if (this.onEnd) this.onEnd();
    };
    source.start(0, this.offset);
    this.source = source;
  }

  stop() {
    if (!this.source) return;
    this.offset = this.time;
    const s = this.source;
    this.source = null;
    try { s.stop(); } catch { /* already ended */ }
    s.disconnect();
  }

  seek(t) {
    if (this.playing) this.play(t);
    else this.offset = Math.max(0, t);
  }
}
