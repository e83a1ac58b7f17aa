"""Playing a run as an instrument: the model loaded for real time, its pads, the take it records
and the take rendered again. The engine itself is `inspire.samplernn.engine`; the front ends are
`inspire play` (inspire.cli.play) and the studio.

    inst = load(run_dir, pads=["track0@12.5"])       # checkpoint, engine, pads primed once
    speed = inst.speed()                              # x real time on this machine, measured
    take = Take(inst, folder, seed=...)               # optional: record
    session = inst.session(seed=..., timeline=..., on_block=take.write)
    ... session.start(); session.set("temperature", 1.1); session.read(n) ...; session.stop()
    take.finish(session.timeline, underruns=...)      # audio committed, sidecar last

A take is an ordinary clip (<id>.wav + <id>.json, written through `inspire.samplernn.generate`'s
sidecar) whose sidecar also holds "performance": the engine (backend and precision), the seed,
the temperature lane and every control event at its sample position, the pads' prime
stretches, and "start": the sample of the session where the take began (0 for `inspire play
--record`; later when the studio's Record is pressed while playing). `again_take` renders it
again sample for sample (`inspire generate RUN --again ID`): the session from its start, keeping
the take's samples.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from inspire import clips
from inspire.errors import UserInputError
from inspire.samplernn import controls, generate
from inspire.samplernn import engine as eng

DEFAULT_PAD_SECONDS = 2.0  # how much of a pad's source primes the stream
MIN_SPEED = 1.2  # x real time an engine must reach to play without stuttering (headroom for audio and UI)
BLOCK_SECONDS = 0.02  # one block of the engine: 320 samples at 16 kHz


class Instrument:
    """A run's model, ready to play: context (checkpoint, data settings), engine, primed pads,
    and the speed `load` measured (x real time; None when not measured)."""

    def __init__(self, ctx, engine: eng.Engine, pads: dict[int, dict], snapshots: dict[int, eng.Snapshot], *,
                 label: int = 0, measured: float | None = None):
        self.ctx, self.engine, self.pads, self.snapshots = ctx, engine, pads, snapshots
        self.measured = measured
        self.label = int(label)  # the label row a session starts with (0: no label)
        self.label_pads = {n: int(p["row"]) for n, p in pads.items() if "label" in p}

    @property
    def labels(self) -> tuple[str, ...]:
        """The model's label names (row i + 1 is labels[i]); empty for a model trained without."""
        return tuple(self.ctx.model.cfg.labels)

    @property
    def sample_rate(self) -> int:
        return self.ctx.sample_rate

    def decode(self, classes: np.ndarray) -> np.ndarray:
        from inspire.audio.quantize import dequantize

        return dequantize(classes, kind=self.ctx.quantization, levels=self.ctx.levels)

    def speed(self, *, seconds: float = 0.5) -> float:
        return measure_speed(self.engine, seconds=seconds)

    def session(self, *, seed: int, timeline: controls.Timeline, out_rate: int | None = None,
                n_samples: int | None = None, on_block=None, ahead: float = 0.08) -> eng.Session:
        self.engine.reset()
        if self.engine.label_rows:  # every session starts from the same label (recorded when it is one)
            self.engine.set_labels(self.label)
            if self.label:
                timeline.add(0, label=self.label)
        return eng.Session(self.engine, seed=generate.stream_seed(seed, 0), timeline=timeline, decode=self.decode,
                           sample_rate=self.sample_rate, pads=self.snapshots, out_rate=out_rate,
                           block=max(1, round(BLOCK_SECONDS * self.sample_rate)), ahead=ahead,
                           n_samples=n_samples, on_block=on_block, label_pads=self.label_pads)


def load(run_dir: str | os.PathLike, *, checkpoint: str = "best", precision: str = "auto", backend: str = "auto",
         pads: list[str] | tuple[str, ...] = (), pad_seconds: float = DEFAULT_PAD_SECONDS,
         allow_slow: bool = False, steer: str | None = None, log=None) -> Instrument:
    """Load RUN_DIR's checkpoint for playing. precision "auto": fp32 if this machine plays it with
    headroom, else int8 (said on `log`). Raises UserInputError, before any sound, when the engine
    cannot keep up (unless `allow_slow`), naming the measured speed and what would help.
    `steer`: the label a labelled model plays from the start; a pad `label:NAME` steers to NAME
    when struck (instead of re-priming)."""
    from inspire.samplernn.checkpoint import resolve

    log = log or (lambda msg: print(msg, file=sys.stderr))
    if precision not in ("auto", *eng.PRECISIONS):
        raise UserInputError(f"--precision must be auto, fp32 or int8, got {precision!r}")
    if not (pad_seconds > 0 and np.isfinite(pad_seconds)):
        raise UserInputError(f"--pad-seconds must be > 0, got {pad_seconds}")
    run_dir = Path(run_dir)
    parsed = [None if p.startswith(LABEL_PAD) else controls.parse_pad(p) for p in pads]  # before loading
    ctx = generate._load(run_dir, resolve(run_dir, str(checkpoint)), "cpu")
    ctx.model.requires_grad_(False)
    resolved = {i + 1: label_pad(ctx, spec) if parsed_ is None else resolve_pad(ctx, *parsed_, pad_seconds, spec=spec)
                for i, (parsed_, spec) in enumerate(zip(parsed, pads, strict=True))}
    start_label = label_row(ctx, steer, "--steer") if steer else 0
    be = eng.pick_backend(backend)
    log("play: measuring this machine's speed (the first run also compiles the engine: a few seconds)")
    tries = ["fp32", "int8"] if precision == "auto" else [precision]
    speeds = {}
    for p in tries:
        engine = eng.Engine(ctx.model, precision=p, backend=be, quiet=True)
        speeds[p] = measure_speed(engine)
        if speeds[p] >= MIN_SPEED:
            break
    chosen = p
    if speeds[chosen] < MIN_SPEED:
        figures = ", ".join(f"{k} {v:.2f}x" for k, v in speeds.items())
        advice = ("try --precision int8, " if "int8" not in speeds else "") + \
                 "or a model that costs less: inspire train RUN --preset live (or small)"
        msg = (f"{ctx.ckpt_path}: this machine generates the model at {figures} real time; playing needs "
               f"{MIN_SPEED:g}x: {advice}")
        if not allow_slow:
            raise UserInputError(msg + " (--allow-slow plays anyway, with gaps)")
        log("play: warning: " + msg)
    elif precision == "auto" and chosen != "fp32":
        log(f"play: fp32 runs at {speeds['fp32']:.2f}x real time here; playing in int8 ({speeds[chosen]:.2f}x)")
    else:
        log(f"play: {engine.name} at {speeds[chosen]:.2f}x real time")
    snapshots = eng.prime_pads(engine, {n: pad_classes(ctx, p) for n, p in resolved.items() if "label" not in p})
    return Instrument(ctx, engine, resolved, snapshots, label=start_label, measured=speeds[chosen])


def measure_speed(engine: eng.Engine, *, seconds: float = 0.5) -> float:
    """Audio seconds per wall second of one stream (after compiling; leaves the engine reset)."""
    sr = 16000
    warm = engine.lookback * 2
    one = np.ones((warm, engine.streams), np.float32)
    engine.generate(one, np.full_like(one, 0.5))  # compiles the kernels the first time (cached on disk)
    n = max(engine.lookback, int(seconds * sr) // engine.lookback * engine.lookback)
    temps = np.ones((n, engine.streams), np.float32)
    unif = np.random.default_rng(0).random((n, engine.streams), dtype=np.float32)
    start = time.perf_counter()
    engine.generate(temps, unif)
    wall = time.perf_counter() - start
    engine.reset()
    return n / sr / max(wall, 1e-9)


# ----------------------------------------------------------------------------------------------
# Pads


def resolve_pad(ctx, name: str, at: float | None, seconds: float, *, spec: str | None = None) -> dict:
    """A pad's prime stretch, as generate's prime records are: the `seconds` of a corpus track
    (by id or name) or of an audio file just before moment `at` (a file's end when None)."""
    spec = spec or (name if at is None else f"{name}@{at:g}")
    sr = ctx.sample_rate
    path = Path(name)
    if path.is_file():
        from inspire.audio.io import sha256_of

        q = generate._prepared_file(ctx, str(path.resolve()))
        end = q.size if at is None else round(at * sr)
        if end > q.size or end <= 0:
            raise UserInputError(f"--pad {spec}: {at} s is outside {name} ({q.size / sr:.2f} s long)")
        start = max(0, end - round(seconds * sr))
        return {"source": str(path.resolve()), "sha256": sha256_of(path), "start_s": round(start / sr, 6),
                "seconds": round((end - start) / sr, 6), "pad": spec}
    from inspire.errors import DatasetError

    try:
        data = generate._corpus(ctx)
    except DatasetError:
        raise UserInputError(f"--pad {spec}: no such file, and {ctx.run_dir} has no prepared data to find a track "
                             "in") from None
    track = next((t for t in data.tracks if t.id == name), None) or next(
        (t for t in data.tracks if t.name.lower() == name.lower() or Path(t.name).stem.lower() == name.lower()), None)
    if track is None:
        names = ", ".join(t.id for t in data.tracks[:12]) + (" ..." if len(data.tracks) > 12 else "")
        raise UserInputError(f"--pad {spec}: no track {name!r} in {ctx.run_dir}'s prepared data (tracks: {names}) "
                             "and no such file")
    if at is None:
        raise UserInputError(f"--pad {spec}: say where in the track, e.g. {track.id}@12.5 (seconds) or {track.id}@1:05")
    end = round(at * sr)
    if end > track.samples or end <= 0:
        raise UserInputError(f"--pad {spec}: {at:g} s is outside track {track.id} ({track.samples / sr:.2f} s long)")
    start = max(0, end - round(seconds * sr))
    return {"source": "corpus", "track": track.id, "start_s": round(start / sr, 6),
            "seconds": round((end - start) / sr, 6), "pad": spec}


LABEL_PAD = "label:"


def label_row(ctx, name: str, what: str) -> int:
    """A label's row in the model's tables (0: none), named as `generate --steer` takes it."""
    from inspire import schedule

    steer = schedule.parse_steers([name])[0]
    if len(steer.labels) != 1:
        raise UserInputError(f"{what} {name!r}: one label, not a curve (pads and the knob move between labels)")
    names = ctx.model.cfg.labels
    if not names:
        raise UserInputError(f"{what} {name}: {ctx.ckpt_path} was trained without labels; train with --label-by track "
                             "(or folder, or a CSV of sections) to steer")
    return steer.rows(names)[0]


def label_pad(ctx, spec: str) -> dict:
    """A pad `label:NAME`: striking it steers the stream to NAME (the stream goes on, re-steered)."""
    name = spec[len(LABEL_PAD):]
    row = label_row(ctx, name, "--pad")
    return {"label": "none" if row == 0 else ctx.model.cfg.labels[row - 1], "row": row, "pad": spec}


def pad_classes(ctx, prime: dict) -> np.ndarray:
    return np.asarray(generate._prime_classes(ctx, prime), dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Takes


class Take:
    """Records a performance as a clip: audio streamed to a partial file while playing, then
    committed whole; the sidecar is written last (a clip with a sidecar is finished). The take
    begins with the first block it is given (`start`: that block's position in the session)."""

    def __init__(self, inst: Instrument, folder: str | os.PathLike, *, seed: int):
        self.inst, self.folder, self.seed = inst, Path(folder), int(seed)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.created = datetime.now(timezone.utc)
        key = f"{inst.ctx.ckpt_sha256}:{seed}:{self.created.isoformat()}:{os.getpid()}:{time.perf_counter_ns()}"
        self.id = f"take-{self.created:%Y%m%d-%H%M%S}-{hashlib.sha256(key.encode()).hexdigest()[:6]}"
        self.writer = generate._ClipWriter(self.folder / f"{self.id}.wav", inst.sample_rate)
        self.start: int | None = None  # the session's sample where the take begins
        self.samples = 0

    def write(self, pos: int, classes: np.ndarray, audio: np.ndarray) -> None:
        """Session.on_block: append one block (called in the engine's thread, in order)."""
        if self.start is None:
            self.start = int(pos)
        self.writer.write(audio)
        self.samples = pos + classes.size - self.start

    def finish(self, timeline: controls.Timeline, *, underruns: int, audio_device: str,
               device_rate: int | None) -> Path:
        """Commit the audio, then write the sidecar (seed, checkpoint, engine, the session's
        controls as played up to the take's end)."""
        if self.samples == 0:
            self.writer.abort()
            raise UserInputError("play: nothing was generated, so no take was recorded")
        self.writer.commit()
        end = self.start + self.samples
        played = timeline.to_json()
        played["events"] = [e for e in played["events"] if e["at"] < end]  # later ones never reach the take
        timeline = controls.Timeline.from_json(played, sample_rate=timeline.sample_rate)
        perf = {
            "engine": self.inst.engine.name,
            "precision": self.inst.engine.precision,
            "start": self.start,
            "timeline": played,
            "pads": {str(n): p for n, p in self.inst.pads.items()},
            "underruns": int(underruns),
            "audio_device": audio_device,
            "device_rate": device_rate,
        }
        write_take_sidecar(self.inst.ctx, self.folder, self.id, seed=self.seed, samples=self.samples,
                           timeline=timeline, performance=perf)
        return self.folder / f"{self.id}.wav"

    def abort(self) -> None:
        self.writer.abort()


def write_take_sidecar(ctx, folder: Path, take_id: str, *, seed: int, samples: int, timeline: controls.Timeline,
                       performance: dict) -> None:
    plan = generate.ClipPlan(0, take_id, int(seed), generate.stream_seed(seed, 0), timeline.schedule, None)
    truncation = {k: c.resolved(samples, timeline.sample_rate) for k, c in timeline.truncation.items()}
    generate._write_sidecar(folder, ctx, plan, None, n_samples=samples, include_prime=False, offset_s=0.0,
                            fields={"temperature": timeline.curve(samples, start=int(performance.get("start", 0))),
                                    **truncation},
                            extra={"engine": performance["engine"], "performance": performance})
    header = {"run": str(ctx.run_dir.resolve()), "checkpoint": ctx.checkpoint, "job": {"play": True}}
    clips.rebuild_manifest(folder, header)


def again_take(run_dir: str | os.PathLike, side_path: Path, rec: clips.ClipRecord, *, seconds: float | None = None,
               out: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Render a recorded take again, sample for sample (same engine and precision, seed,
    controls at their positions, pads): the session from its start, keeping the take's samples
    (a take punched in at "start" renders what came before it unheard); `seconds` renders the
    take longer or shorter. Returns the folder."""
    run_dir = Path(run_dir)
    try:
        perf = rec.extra["performance"]
        backend, precision = str(perf["engine"]).split("-", 1)
        seed, n_samples, take_id, sr = int(rec.seed), int(rec.samples), rec.id, int(rec.sample_rate)
        start = int(perf.get("start", 0))  # takes from before punch-in started with their session
        if start < 0:
            raise ValueError(f"start {start} < 0")
        timeline = controls.Timeline.from_json(perf["timeline"], sample_rate=sr)
        pads = {int(k): v for k, v in (perf.get("pads") or {}).items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise UserInputError(f"{side_path}: not a take inspire can render again ({exc})") from None
    if seconds is not None:
        if not (seconds > 0 and np.isfinite(seconds)):
            raise UserInputError(f"--seconds must be > 0, got {seconds}")
        n_samples = max(1, round(seconds * sr))
    for n, prime in pads.items():
        if "label" not in prime and prime.get("source") != "corpus":
            from inspire.audio.io import sha256_of

            path = Path(prime.get("source", ""))
            if not path.is_file() or sha256_of(path) != prime.get("sha256"):
                raise UserInputError(f"{side_path}: pad {n}'s file {path} is gone or has changed; the take cannot be "
                                     "rendered again")
    ctx = generate._load(run_dir, generate._find_checkpoint(run_dir, rec.checkpoint), "cpu")
    if backend == "numba" and not eng.numba_available():
        print("generate: warning: this take was played by the compiled engine but numba is not installed; the torch "
              "path computes the same function and may part from the take after a few seconds", file=sys.stderr)
        backend = "torch"
    engine = eng.Engine(ctx.model, precision=precision, backend=backend)
    snapshots = eng.prime_pads(engine, {n: pad_classes(ctx, p) for n, p in pads.items() if "label" not in p})
    folder = Path(out) if out is not None else run_dir / "clips" / f"again-{take_id}-{n_samples / sr:g}s"
    target = folder / f"{take_id}.wav"
    if target.exists() and not force:
        raise UserInputError(f"{target} exists; use another --out, or --force to replace it")
    folder.mkdir(parents=True, exist_ok=True)
    inst = Instrument(ctx, engine, pads, snapshots)
    writer = generate._ClipWriter(target, sr)
    try:
        pos = 0
        for block in eng.render(engine, seed=generate.stream_seed(seed, 0), timeline=timeline, pads=snapshots,
                                n_samples=start + n_samples):
            if pos + block.size > start:
                writer.write(inst.decode(block[max(0, start - pos):]))
            pos += block.size
        writer.commit()
    finally:
        writer.abort()
    again_perf = {**perf, "engine": engine.name, "precision": engine.precision, "underruns": 0, "audio_device": None,
                  "again_of": str(side_path)}
    write_take_sidecar(ctx, folder, take_id, seed=seed, samples=n_samples, timeline=timeline, performance=again_perf)
    print(f"generate: take {take_id} rendered again ({n_samples / sr:.2f} s) in {folder}", file=sys.stderr)
    return folder
