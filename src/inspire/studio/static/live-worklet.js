// The live panel's audio thread: a ring buffer the page fills with the server's audio frames,
// played out one render quantum at a time. Written by hand: an AudioWorklet processor is a few
// dozen lines no library provides in a form that needs no build step.
//
// Messages in (port): {samples: Float32Array} append; {flush: true} drop everything and wait to
// fill again; {ending: true} the stream is over, so running dry is not an underrun.
// Messages out, every REPORT quanta: {played, underruns, buffered, dropped, playing}:
//   played     samples played from the buffer (not counting silence)
//   underruns  times the buffer ran dry while the stream was on (each one an audible gap)
//   buffered   samples waiting
// After an underrun the processor waits for `rebuffer` samples before it plays again, so one
// late frame makes one gap rather than a crackle.

const REPORT = 4;  // quanta between reports (512 samples: 32 ms at 16 kHz)

class LivePlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions || {};
    this.buf = new Float32Array(o.capacity || 131072);
    this.prebuffer = o.prebuffer || 2048;
    this.rebuffer = o.rebuffer || this.prebuffer;
    this.read = 0;    // totals; the index is total % capacity
    this.write = 0;
    this.playing = false;
    this.ending = false;
    this.played = 0;
    this.underruns = 0;
    this.dropped = 0;
    this.quanta = 0;
    this.port.onmessage = (ev) => this.message(ev.data);
  }

  message(m) {
    if (m.samples) {
      const x = m.samples;
      const cap = this.buf.length;
      const room = cap - (this.write - this.read);
      const n = Math.min(x.length, room);
      this.dropped += x.length - n;  // the server paces by what we played: this only happens if it is wrong
      for (let i = 0; i < n; i++) this.buf[(this.write + i) % cap] = x[i];
      this.write += n;
    } else if (m.flush) {
      this.read = this.write;
      this.playing = false;
      this.ending = false;
    } else if (m.ending) {
      this.ending = true;
    }
  }

  process(inputs, outputs) {
    const out = outputs[0];
    const first = out[0];
    const len = first.length;
    const avail = this.write - this.read;
    if (!this.playing && (avail >= this.prebuffer || (this.ending && avail > 0))) this.playing = true;
    let n = 0;
    if (this.playing) {
      n = Math.min(len, avail);
      const cap = this.buf.length;
      for (let i = 0; i < n; i++) first[i] = this.buf[(this.read + i) % cap];
      this.read += n;
      this.played += n;
      if (n < len && !this.ending) {
        this.underruns += 1;
        this.playing = false;
        this.prebuffer = this.rebuffer;
      }
    }
    first.fill(0, n);
    for (let c = 1; c < out.length; c++) out[c].set(first);
    if (++this.quanta % REPORT === 0) {
      this.port.postMessage({ played: this.played, underruns: this.underruns, buffered: this.write - this.read,
        dropped: this.dropped, playing: this.playing });
    }
    return true;
  }
}

registerProcessor('inspire-live', LivePlayer);
