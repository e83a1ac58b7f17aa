"""The real-time engine: a few streams of a SampleRNN, generated block by block, fast enough to
play, with controls that change the sound while it plays.

Two layers:

`Engine` computes what `FastStepper.step` + `sample_logits` compute (the same function, the same
random numbers, so in fp32 the same samples: tested), a block at a time. Backends:
  "numba"  compiled kernels (`inspire.samplernn.kernels`) over weights laid out once (`Layout`):
           no per-sample Python. Precision "fp32", or "int8" (the big matrices as int8 with a
           scale per output, their inputs as int16 with a scale per vector, integer dot
           products; next-sample distributions within the int8 tolerance of fp32, tested).
  "torch"  the portable path: `FastStepper` in a Python loop (fbgemm dynamic int8 for "int8").
           Used when numba is not importable (said on stderr); tested equal to "numba".
The engine's arithmetic is deterministic: the same backend and precision replay a stream sample
for sample, on any number of streams beside it.

`Session` plays one stream in real time: `start()`, `set(control, value)`, `read(n)` blocks,
`stop()`. A producer thread runs the engine a little ahead into a ring buffer (a slow block never
reaches the sound card); controls land at the next block the producer makes and are recorded at
that sample position, so a performance is data (seed + control events) and renders again exactly
(`render`). The instrument and its takes are `inspire.samplernn.play`; `inspire play` and the
studio are front ends.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import torch

from inspire.audio.quantize import silence_level
from inspire.samplernn.model import SampleRNN
from inspire.samplernn.sample import NOISE_BLOCK, FastStepper, sample_logits

BACKENDS = ("numba", "torch")
_NO_LOGITS = np.zeros((0, 0, 0), np.float32)
_OFF = np.zeros((0, 0), np.float32)  # a truncation that is off (min-p 0, top-p 1)
PRECISIONS = ("fp32", "int8")


def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def pick_backend(backend: str = "auto", *, quiet: bool = False) -> str:
    """"auto" -> "numba" when importable, else "torch" (said once on stderr)."""
    if backend == "auto":
        if numba_available():
            return "numba"
        if not quiet:
            print("engine: numba is not installed; using the portable torch path (slower: pip install numba)",
                  file=sys.stderr)
        return "torch"
    if backend not in BACKENDS:
        raise ValueError(f"unknown engine backend {backend!r}; choose auto, {', '.join(BACKENDS)}")
    if backend == "numba" and not numba_available():
        raise ValueError("engine backend numba asked for, but numba is not importable")
    return backend


class Uniforms:
    """Per-stream uniforms, the very sequence `inspire.samplernn.sample.StreamNoise` draws
    (blocks of NOISE_BLOCK from a torch.Generator seeded per stream), served as numpy."""

    def __init__(self, seeds: list[int]):
        self.gens = []
        for s in seeds:
            g = torch.Generator()
            g.manual_seed(int(s) & 0xFFFF_FFFF_FFFF_FFFF)
            self.gens.append(g)
        self.block = np.empty((0, len(seeds)), np.float32)
        self.pos = 0

    def next(self, n: int) -> np.ndarray:
        """(n, B) float32: the next n uniforms of every stream."""
        out = np.empty((n, len(self.gens)), np.float32)
        done = 0
        while done < n:
            if self.pos == len(self.block):
                self.block = torch.stack([torch.rand(NOISE_BLOCK, generator=g) for g in self.gens], 1).numpy()
                self.pos = 0
            take = min(n - done, len(self.block) - self.pos)
            out[done : done + take] = self.block[self.pos : self.pos + take]
            self.pos += take
            done += take
        return out


# ----------------------------------------------------------------------------------------------
# Weights laid out once


class Layout:
    """A model's weights in the kernels' flat layout (see `inspire.samplernn.kernels`).

    fp32 matrices are stored (in, out): row i holds input i's weights to every output. For int8
    the big matrices (RNN, upsampling, the sample-level MLP) hold round(W / scale) as (out, in)
    with one scale per output (max |w| / 127), and the tap table one scale per row; input
    layers and biases stay fp32.
    """

    @torch.no_grad()
    def __init__(self, model: SampleRNN, *, precision: str = "fp32"):
        from inspire.samplernn import kernels as kr

        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
        cfg = model.cfg
        self.cfg, self.precision = cfg, precision
        floats: list[np.ndarray] = []
        ints: list[np.ndarray] = []
        self._nf = self._nq = 0
        rows = []

        def put_f(a: np.ndarray) -> int:
            off = self._nf
            floats.append(np.ascontiguousarray(a, np.float32).ravel())
            self._nf += floats[-1].size
            return off

        def put_q(a: np.ndarray) -> int:
            off = self._nq
            ints.append(np.ascontiguousarray(a, np.int8).ravel())
            self._nq += ints[-1].size
            return off

        def matrix(weight, bias, *, quantize: bool) -> None:
            w = weight.detach().float().cpu().numpy()  # (out, in)
            b = bias.detach().float().cpu().numpy()
            n_out, n_in = w.shape
            if quantize and precision == "int8":
                scale = np.maximum(np.abs(w).max(axis=1), 1e-12) / 127.0  # (out,)
                q = np.clip(np.rint(w / scale[:, None]), -127, 127)
                rows.append((-1, n_in, n_out, put_q(q), put_f(scale), put_f(b)))  # (out, in): dot products
            else:
                rows.append((put_f(w.T), n_in, n_out, -1, -1, put_f(b)))

        for tier in model.tiers:
            matrix(tier.input.weight, tier.input.bias, quantize=False)
            matrix(tier.upsample.weight, tier.upsample.bias, quantize=True)
            for layer in range(cfg.rnn_layers):
                for kind in ("ih", "hh"):
                    w, b = getattr(tier.rnn, f"weight_{kind}_l{layer}"), getattr(tier.rnn, f"bias_{kind}_l{layer}")
                    matrix(w, b, quantize=True)
        matrix(model.mlp.hidden.weight, model.mlp.hidden.bias, quantize=True)
        matrix(model.mlp.output.weight, model.mlp.output.bias, quantize=True)
        taps = model.mlp.taps.detach().float().cpu().numpy().reshape(-1, cfg.dim)  # (frame * levels, dim)
        if precision == "int8":  # a quarter of the memory a sample's 16 (frame) gathered rows come from
            tscale = np.maximum(np.abs(taps).max(axis=1), 1e-12) / 127.0
            taps_at = (-1, put_q(np.clip(np.rint(taps / tscale[:, None]), -127, 127)), put_f(tscale))
        else:
            taps_at = (put_f(taps), -1, -1)
        self.wf = np.concatenate(floats) if floats else np.zeros(0, np.float32)
        self.wq = np.concatenate(ints) if ints else np.zeros(1, np.int8)
        self.mat = np.array(rows, dtype=np.int64)
        self.frames = np.array(cfg.tier_frames, dtype=np.int64)
        self.ratios = np.array([t.ratio for t in model.tiers], dtype=np.int64)
        dims = np.zeros(9, np.int64)
        dims[[kr.D_TIERS, kr.D_LAYERS, kr.D_LSTM, kr.D_DIM, kr.D_LEVELS, kr.D_LOOKBACK]] = (
            len(model.tiers), cfg.rnn_layers, int(cfg.rnn == "lstm"), cfg.dim, cfg.levels, cfg.lookback)
        dims[[kr.D_TAPS, kr.D_TAPS_Q, kr.D_TAPS_SCALE]] = taps_at
        self.dims = dims
        # A labelled model's label tables, (label_rows, dim) per tier: an engine adds a row (or a
        # mix of rows) to each tier's input, as model.step does.
        self.label_tables = ([t.label_table.detach().float().cpu().numpy() for t in model.tiers]
                             if cfg.labels else None)
        # Learned initial states: (layers, 1|2, dim)
        self.h0 = [(t.h0.detach().float().cpu().numpy()[:, None] if cfg.rnn == "gru"
                    else t.h0.detach().float().cpu().numpy().transpose(1, 0, 2)) for t in model.tiers]

    @property
    def nbytes(self) -> int:
        return self.wf.nbytes + self.wq.nbytes


# ----------------------------------------------------------------------------------------------
# The engine


@dataclass
class Snapshot:
    """An engine's whole stream state (to return to it later: a pad)."""

    t: int
    history: np.ndarray  # (B, lookback) int64
    hidden: object  # backend-specific
    conds: object


class Engine:
    """`streams` independent streams of `model`, generated a block at a time.

    `generate(temps, unif)` -> (B, n) classes; `prime(classes)` warms the state on real audio
    (as `prime_state`); `reset()` returns to silence and the learned initial state;
    `snapshot()`/`restore()` save and recall the whole state. The engine does not own random
    numbers or temperatures: the caller passes them per sample, so they can come from a control
    lane, a knob or a recorded take.
    """

    def __init__(self, model: SampleRNN, *, streams: int = 1, precision: str = "fp32", backend: str = "auto",
                 quiet: bool = False, layout: Layout | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r}; choose {', '.join(PRECISIONS)}")
        self.backend = pick_backend(backend, quiet=quiet)
        self.precision, self.streams = precision, int(streams)
        self.model = model
        self.cfg = model.cfg
        self.lookback, self.levels = model.lookback, model.cfg.levels
        self.silence = silence_level(levels=self.levels)  # the class of 0.0, for both quantization kinds
        if self.backend == "numba":
            if layout is not None and layout.precision != precision:
                raise ValueError(f"layout is {layout.precision}, engine asked for {precision}")
            self.layout = layout or Layout(model, precision=precision)
        else:
            self.stepper = FastStepper(model, int8=precision == "int8")
        self.label_rows = model.cfg.label_rows if model.cfg.labels else 0
        self.set_labels(None)
        self.reset()

    @property
    def name(self) -> str:
        """backend-precision, as recorded in sidecars ("numba-fp32", "torch-int8", ...)."""
        return f"{self.backend}-{self.precision}"

    # controls ---------------------------------------------------------------------------------

    def set_labels(self, labels) -> None:
        """Steer a labelled model from the next frame on: None ("no label", row 0), a row or (B,)
        rows, or mixing weights over the rows, (label_rows,) or (B, label_rows) (a morph's point).
        A model without labels takes only None."""
        b, rows = self.streams, self.label_rows
        if not rows:
            if labels is not None:
                raise ValueError("this model was trained without labels")
            self.labels = np.zeros((0, 0, 0), np.float32)
            self.label_weights = None
            return
        given = labels is not None
        w = np.asarray(labels if given else 0)
        if w.dtype.kind in "iu":
            w = np.eye(rows, dtype=np.float32)[np.broadcast_to(w, (b,))]
        w = np.array(np.broadcast_to(np.asarray(w, np.float32), (b, rows)))  # (B, rows), a copy of its own
        if self.backend == "numba":
            self.labels = np.ascontiguousarray(np.stack([w @ table for table in self.layout.label_tables]))
        self.label_weights = torch.from_numpy(w) if given else None  # None: row 0, as model.step

    # state ------------------------------------------------------------------------------------

    def reset(self) -> None:
        """Silence and the learned initial state, frames aligned (t = 0)."""
        b, lb = self.streams, self.lookback
        self.t = 0
        self.history = np.full((b, lb), self.silence, np.int64)
        if self.backend == "numba":
            lay = self.layout
            n_tiers, layers, dim = len(lay.h0), self.cfg.rnn_layers, self.cfg.dim
            parts = 2 if self.cfg.rnn == "lstm" else 1
            self.hidden = np.empty((n_tiers, layers, parts, b, dim), np.float32)
            for k, h0 in enumerate(lay.h0):
                self.hidden[k] = h0[:, :, None, :]
            self.conds = np.zeros((n_tiers, b, int(lay.ratios.max()) * dim), np.float32)
        else:
            self.state = self.model.start(b)

    def snapshot(self) -> Snapshot:
        if self.backend == "numba":
            return Snapshot(self.t, self.history.copy(), self.hidden.copy(), self.conds.copy())
        return Snapshot(self.t, self.history.copy(), [h.clone() for h in self.state.hidden],
                        [None if c is None else c.clone() for c in self.state.conds])

    def restore(self, snap: Snapshot) -> None:
        from inspire.samplernn.model import StepState

        self.t, self.history = snap.t, snap.history.copy()
        if self.backend == "numba":
            self.hidden[...] = snap.hidden
            self.conds[...] = snap.conds
        else:
            self.state = StepState(snap.t, [h.clone() for h in snap.hidden],
                                   [None if c is None else c.clone() for c in snap.conds])

    @torch.inference_mode()
    def prime(self, classes: np.ndarray) -> None:
        """Warm every stream's state on real audio: classes (B, P) or (P,) for all streams.

        What `inspire.samplernn.sample.prime_state` does (tiers aligned to a top-frame boundary,
        up to lookback - 1 oldest samples dropped, a short prime padded with silence in front),
        with this engine's own arithmetic, so a primed stream replays exactly."""
        x = np.asarray(classes, dtype=np.int64)
        if x.ndim == 1:
            x = np.broadcast_to(x, (self.streams, x.size))
        if x.shape[0] != self.streams:
            raise ValueError(f"prime has {x.shape[0]} rows for {self.streams} streams")
        lb = self.lookback
        if x.shape[1] < lb:
            x = np.concatenate([np.full((self.streams, lb - x.shape[1]), self.silence, np.int64), x], axis=1)
        usable = (x.shape[1] - lb) // lb * lb
        x = np.array(x[:, x.shape[1] - usable - lb :], dtype=np.int64, order="C")  # a writable copy
        self.reset()
        if usable:
            if self.backend == "numba":
                from inspire.samplernn import kernels as kr

                lay = self.layout
                dummy = np.zeros((1, self.streams), np.float32)
                kr.run(usable, 0, x, self.hidden, self.conds, self.labels, dummy, dummy, _OFF, _OFF, lay.wf, lay.wq,
                       lay.mat, lay.frames, lay.ratios, lay.dims, True, _NO_LOGITS)
            else:
                from inspire.samplernn.sample import prime_state

                _, self.state = prime_state(self.model, torch.from_numpy(x), self.label_weights)
        self.t = 0
        self.history = x[:, -lb:].copy()

    # generation -------------------------------------------------------------------------------

    def generate(self, temps: np.ndarray, unif: np.ndarray, *, min_p: np.ndarray | None = None,
                 top_p: np.ndarray | None = None, logits: bool = False):
        """The next n samples of every stream: temps and unif (n, B) float32 -> (B, n) int64.
        min_p, top_p: (n, B) truncation (`sample.sample_logits`), or None for off.
        With `logits`, also every sample's logits (B, n, levels), before temperature."""
        temps = np.ascontiguousarray(temps, np.float32)
        unif = np.ascontiguousarray(unif, np.float32)
        n, b = temps.shape
        if b != self.streams or unif.shape != temps.shape:
            raise ValueError(f"temps {temps.shape} and unif {unif.shape} must both be (n, {self.streams})")
        minp = _OFF if min_p is None else np.ascontiguousarray(min_p, np.float32)
        topp = _OFF if top_p is None else np.ascontiguousarray(top_p, np.float32)
        for name, a in (("min_p", minp), ("top_p", topp)):
            if a.size and a.shape != temps.shape:
                raise ValueError(f"{name} {a.shape} must be (n, {self.streams}) like temps")
        lb = self.lookback
        buf = np.empty((b, lb + n), np.int64)
        buf[:, :lb] = self.history
        keep = np.empty((n, b, self.levels), np.float32) if logits else _NO_LOGITS
        if self.backend == "numba":
            from inspire.samplernn import kernels as kr

            lay = self.layout
            self.t = int(kr.run(n, self.t, buf, self.hidden, self.conds, self.labels, temps, unif, minp, topp,
                                lay.wf, lay.wq, lay.mat, lay.frames, lay.ratios, lay.dims, False, keep))
        else:
            self._generate_torch(buf, temps, unif, minp, topp, keep)
        self.history = buf[:, -lb:].copy()
        return (buf[:, lb:], keep.transpose(1, 0, 2)) if logits else buf[:, lb:]

    @torch.inference_mode()
    def _generate_torch(self, buf: np.ndarray, temps: np.ndarray, unif: np.ndarray, minp: np.ndarray,
                        topp: np.ndarray, keep: np.ndarray) -> None:
        lb = self.lookback
        tbuf = torch.from_numpy(buf)  # shares memory: samples land in buf
        tt, tu = torch.from_numpy(temps), torch.from_numpy(unif)
        tm = torch.from_numpy(minp) if minp.size else None
        tp = torch.from_numpy(topp) if topp.size else None
        state = self.state
        for s in range(temps.shape[0]):
            logits, state = self.stepper.step(tbuf[:, s : s + lb], state, self.label_weights)
            if keep.shape[0]:
                keep[s] = logits.float().numpy()
            tbuf[:, lb + s] = sample_logits(logits, tt[s], tu[s], min_p=None if tm is None else tm[s],
                                            top_p=None if tp is None else tp[s])
        self.state, self.t = state, state.t


# ----------------------------------------------------------------------------------------------
# A performance: one stream in real time, with controls


class Ring:
    """A single-producer, single-consumer FIFO of float32 audio. The consumer (an audio
    callback) never waits: it takes what is there."""

    def __init__(self, capacity: int):
        import threading

        self.buf = np.zeros(int(capacity), np.float32)
        self.read_pos = self.write_pos = 0  # totals; the buffer index is pos % capacity
        self.lock = threading.Lock()
        self.space_freed = threading.Condition(self.lock)

    def __len__(self) -> int:
        return self.write_pos - self.read_pos

    def write(self, x: np.ndarray, *, stop=None) -> None:
        """Append x, waiting for room (or until stop() is true)."""
        cap, done = self.buf.size, 0
        while done < x.size:
            with self.space_freed:
                while self.write_pos - self.read_pos == cap and not (stop and stop()):
                    self.space_freed.wait(0.05)
                if stop and stop():
                    return
                n = min(x.size - done, cap - (self.write_pos - self.read_pos))
            i = self.write_pos % cap
            first = min(n, cap - i)
            self.buf[i : i + first] = x[done : done + first]
            self.buf[: n - first] = x[done + first : done + n]
            with self.lock:
                self.write_pos += n
            done += n

    def read(self, out: np.ndarray) -> int:
        """Fill out from the FIFO; return how many samples it had (the rest of out is zeroed)."""
        cap = self.buf.size
        with self.lock:
            n = min(out.size, self.write_pos - self.read_pos)
        i = self.read_pos % cap
        first = min(n, cap - i)
        out[:first] = self.buf[i : i + first]
        out[first:n] = self.buf[: n - first]
        out[n:] = 0.0
        with self.space_freed:
            self.read_pos += n
            self.space_freed.notify()
        return n


class Session:
    """One stream of an `Engine`, played in real time, with controls.

        s = Session(engine, seed=..., timeline=Timeline("1.0", sample_rate=16000), decode=...)
        s.start(); s.set("temperature", 1.1); block = s.read(480); ...; s.stop()

    A producer thread generates blocks of `block` samples while the FIFO holds less than `ahead`
    samples (at the output rate), so a slow block is absorbed and the sound card never waits;
    knob to sound is at most (ahead + block) / rate plus the device's own latency. Controls wait
    in a queue and land at the start of the next block made, at a sample position recorded in
    `timeline`. `pads`: pad number -> Snapshot of a primed state (see `prime_pads`).
    `label_pads`: pad number -> label row, pads that steer a labelled model instead of priming.
    `on_block(pos, classes, audio)` sees every block made (for recording), in the producer thread.
    `out_rate`: resample on the fly with soxr's streaming resampler (None: the model's rate).
    `n_samples`: stop generating after this many (None: until stop()).
    """

    def __init__(self, engine: Engine, *, seed: int, timeline, decode, sample_rate: int, pads: dict | None = None,
                 out_rate: int | None = None, block: int = 320, ahead: float = 0.08, n_samples: int | None = None,
                 on_block=None, label_pads: dict | None = None):
        import queue
        import threading

        if engine.streams != 1:
            raise ValueError("a Session plays one stream")
        self.engine, self.timeline, self.decode = engine, timeline, decode
        self.sample_rate, self.out_rate = int(sample_rate), int(out_rate or sample_rate)
        self.pads = dict(pads or {})
        self.label_pads = {int(k): int(v) for k, v in (label_pads or {}).items()}
        self.block, self.n_samples, self.on_block = int(block), n_samples, on_block
        self.seed = int(seed)
        self.noise = Uniforms([self.seed])
        self.ahead = max(1, round(ahead * self.out_rate))
        self.fifo = Ring(self.ahead + 4 * round(self.block * self.out_rate / self.sample_rate) + 1024)
        self.resampler = None
        if self.out_rate != self.sample_rate:
            import soxr

            self.resampler = soxr.ResampleStream(self.sample_rate, self.out_rate, 1, dtype="float32")
        self.controls: queue.SimpleQueue = queue.SimpleQueue()
        self.position = 0  # samples generated
        self.underruns = 0  # reads that found the FIFO short while the stream was still running
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="inspire-engine", daemon=True)
        self.block_seconds: list[float] = []  # wall time of each block (for the bench)

    # the small API ------------------------------------------------------------------------------

    def start(self) -> Session:
        self._thread.start()
        return self

    def set(self, kind: str, value: float = 0.0) -> None:
        """Queue a control (see inspire.samplernn.controls.Control); it lands at the next block."""
        from inspire.samplernn.controls import Control

        c = Control(kind, value)
        if c.kind == "pad" and int(c.value) == 0:
            c = Control("reset")  # pad 0 is silence
        if c.kind == "pad" and int(c.value) in self.label_pads:
            c = Control("label", self.label_pads[int(c.value)])
        if c.kind == "pad" and int(c.value) not in self.pads:
            known = sorted({*self.pads, *self.label_pads})
            raise ValueError(f"no pad {int(c.value)} (pads: {', '.join(map(str, known)) or 'none'})")
        if c.kind == "label" and not 0 <= int(c.value) <= self.engine.label_rows - 1:
            raise ValueError(f"no label {int(c.value)}: the model has "
                             + (f"labels 1-{self.engine.label_rows - 1} (0: no label)" if self.engine.label_rows
                                else "no labels"))
        self.controls.put(c)

    def read(self, n: int) -> np.ndarray:
        """The next n samples at the output rate (float32). Never waits: a short FIFO gives
        silence for the rest, counted as an underrun while the stream is still running."""
        out = np.empty(n, np.float32)
        got = self.fifo.read(out)
        if got < n and not self.finished.is_set() and self._thread.is_alive():
            self.underruns += 1
        return out

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Wait until the FIFO holds its `ahead` (or the stream ended): start the card then."""
        import time

        end = time.monotonic() + timeout
        while len(self.fifo) < self.ahead and not self.finished.is_set() and time.monotonic() < end:
            time.sleep(0.002)

    @property
    def done(self) -> bool:
        """Everything generated has been read (or the producer failed)."""
        return (self.finished.is_set() and len(self.fifo) == 0) or self.error is not None

    def stop(self) -> None:
        """Stop generating (the block in progress completes) and wait for the producer."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.error is not None:
            raise self.error

    # the producer ------------------------------------------------------------------------------

    def temperature(self) -> float:
        return self.timeline.temperature_at(self.position)

    def _apply(self, c) -> None:
        from inspire.samplernn.controls import clamp_temperature

        pos = self.position
        if c.kind == "temperature":
            self.timeline.add(pos, temperature=c.value)
        elif c.kind == "nudge":
            self.timeline.add(pos, temperature=round(clamp_temperature(self.timeline.temperature_at(pos) + c.value), 6))
        elif c.kind == "pad":
            self.engine.restore(self.pads[int(c.value)])
            self.timeline.add(pos, pad=int(c.value))
        elif c.kind == "reset":
            self.engine.reset()
            self.timeline.add(pos, reset=True)
        elif c.kind == "label":
            self.engine.set_labels(int(c.value))
            self.timeline.add(pos, label=int(c.value))
        elif c.kind == "quit":
            self._stop.set()

    def _produce(self) -> None:
        import queue
        import time

        try:
            while not self._stop.is_set():
                if self.n_samples is not None and self.position >= self.n_samples:
                    break
                with self.fifo.lock:
                    full = len(self.fifo) >= self.ahead
                if full:
                    time.sleep(0.002)
                    continue
                while True:
                    try:
                        self._apply(self.controls.get_nowait())
                    except queue.Empty:
                        break
                if self._stop.is_set():
                    break
                n = self.block if self.n_samples is None else min(self.block, self.n_samples - self.position)
                t0 = time.perf_counter()
                temps = self.timeline.temperatures(self.position, n)[:, None]
                trunc = {k: v[:, None] for k, v in self.timeline.truncations(self.position, n).items()}
                classes = self.engine.generate(temps, self.noise.next(n), **trunc)[0]
                audio = self.decode(classes)
                self.block_seconds.append(time.perf_counter() - t0)
                if self.on_block is not None:
                    self.on_block(self.position, classes, audio)
                self.position += n
                last = self.n_samples is not None and self.position >= self.n_samples
                if self.resampler is not None:
                    audio = self.resampler.resample_chunk(audio, last=last)
                self.fifo.write(audio, stop=self._stop.is_set)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread, raised by stop()
            self.error = exc
        finally:
            self.finished.set()


def prime_pads(engine: Engine, primes: dict[int, np.ndarray]) -> dict[int, Snapshot]:
    """Pad number -> the engine's state after priming on those classes (computed once, ahead, so
    a pad fires within a block). Leaves the engine reset."""
    pads = {}
    for n, classes in primes.items():
        engine.prime(classes)
        pads[int(n)] = engine.snapshot()
    engine.reset()
    return pads


def render(engine: Engine, *, seed: int, timeline, pads: dict[int, Snapshot], n_samples: int, block: int = 16000):
    """Render a recorded performance again: yields (n,) classes blocks, sample for sample what
    the Session made (same engine backend and precision, same seed, the controls at their
    recorded positions)."""
    noise = Uniforms([int(seed)])
    events = list(timeline.events)
    pos, i = 0, 0
    while pos < n_samples:
        while i < len(events) and events[i]["at"] <= pos:
            ev = events[i]
            if "pad" in ev:
                engine.restore(pads[int(ev["pad"])])
            elif ev.get("reset"):
                engine.reset()
            elif "label" in ev:
                engine.set_labels(int(ev["label"]))
            i += 1
        nxt = events[i]["at"] if i < len(events) else n_samples
        n = min(block, n_samples - pos, max(1, nxt - pos))
        trunc = {k: v[:, None] for k, v in timeline.truncations(pos, n).items()}
        yield engine.generate(timeline.temperatures(pos, n)[:, None], noise.next(n), **trunc)[0]
        pos += n
