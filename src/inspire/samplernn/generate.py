"""`inspire generate`: an abundance of clips from a trained run, with expressive temperature.

A job is N clips of S seconds from one checkpoint. Clip i takes the i-th setting in turn (a sweep:
every combination of the temperature schedules and min-p and top-p truncation curves given), its
own random stream (seeded from the job seed and i) and, when primed, a prime (one file for all
clips, or its own random stretch of a training track). With the collapse guard on
(inspire.samplernn.guard) every clip is watched for a fall into noise and redrawn where it falls;
the guard's interventions go into the sidecar. A clip's id is deterministic from (checkpoint hash,
seed, schedule, index, prime, truncation and guard when used), so the same command makes the same
clips.

Output folder (default RUN_DIR/clips/<step>-seed<S>-<seconds>s-<hash of the job>/):

    <id>.wav         16-bit mono audio at the run's sample rate
    <id>.json        sidecar (an inspire.clips.ClipRecord): what made it (checkpoint path/sha256/
                     step, seed, index, temperature spec and resolved curve, seconds, sample rate,
                     prime, software, created); what later stages added (curation, a person's
                     marks) survives a regeneration
    <id>.png         the temperature curve (with --plot)
    manifest.json    the job and every finished clip, rebuilt from the sidecars (inspire.clips)

Safe for long jobs: audio streams to `.<id>.partial.wav` as it is made (memory does not grow with
clip length) and is renamed when whole; the sidecar comes after the audio, so a clip with a
sidecar is finished. Run the same command again to resume: finished clips are skipped.
`--shard I/N` (or torchrun's RANK/WORLD_SIZE) splits the clips across processes into the same
folder; the manifest is rebuilt from the sidecars under a file lock, so shards never collide.

The command line (inspire.cli.generate) imports this module only to run a job; the defaults it
shows live in inspire.config.GenerateDefaults.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import sys
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf
import torch

from inspire import __version__, clips
from inspire import schedule as temp
from inspire.audio.dataset import PrepareSettings, condition, load_prepared
from inspire.audio.io import read_audio, sha256_of
from inspire.audio.quantize import dequantize, silence_level
from inspire.config import GENERATE
from inspire.errors import CheckpointError, DatasetError, DiskFullError, InspireError, UserInputError
from inspire.files import atomic_path
from inspire.locks import job_lock
from inspire.progress import Progress
from inspire.samplernn import checkpoint as ckpt_mod
from inspire.samplernn import checks, graph, sample
from inspire.samplernn import guard as collapse_guard
from inspire.samplernn.device import pick_device, process_gpu
from inspire.samplernn.engine import Engine, Layout, Uniforms, numba_available
from inspire.samplernn.guard import GuardConfig, check_replay
from inspire.samplernn.model import SampleRNN
from inspire.samplernn.sample import FastStepper
from inspire.samplernn.threads import candidates, fastest

BLOCK_SAMPLES = 16000  # samples per stream generated between writes to disk
# Streams at once up to which the compiled engine (inspire.samplernn.engine) beats the torch
# stepper on a CPU, per precision (measured in bench/bench_engine.py); larger batches use torch.
ENGINE_MAX_BATCH = {"fp32": 8, "int8": 2}


# ----------------------------------------------------------------------------------------------
# Ids and seeds


def clip_id(checkpoint_sha256: str, seed: int, spec: str, index: int, prime_key: list | None = None,
            steer_key: list | None = None, controls: list | None = None) -> str:
    """Deterministic id of a clip: its index (for sorting) and a hash of what makes it. (A clip
    made without steering, truncation or the guard has the id it had before they existed.)"""
    key = [checkpoint_sha256, int(seed), str(spec), int(index)] + ([prime_key] if prime_key is not None else [])
    key += [["steer", *steer_key]] if steer_key is not None else []
    key += controls or []
    digest = hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()
    return f"{index:04d}-{digest[:8]}"


def stream_seed(seed: int, index: int) -> int:
    """The random-stream seed of clip `index` of a job seeded with `seed` (60 bits, unrelated
    across indices and seeds, unlike seed + index)."""
    return int(hashlib.sha256(f"inspire-clip:{int(seed)}:{int(index)}".encode()).hexdigest()[:15], 16)


def parse_shard(text: str | None) -> tuple[int, int]:
    """'I/N' (0 <= I < N) -> (I, N); None -> from torchrun's RANK/WORLD_SIZE, else (0, 1)."""
    if text is None:
        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        return (int(os.environ.get("RANK", "0") or 0), world) if world > 1 else (0, 1)
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise UserInputError(f"--shard {text!r}: expected I/N, e.g. 0/4 (shards are numbered from 0)") from None
    if not (n >= 1 and 0 <= i < n):
        raise UserInputError(f"--shard {text}: need 0 <= I < N (shards are numbered from 0)")
    return i, n


# ----------------------------------------------------------------------------------------------
# What a job is


@dataclass(frozen=True)
class ClipPlan:
    """One clip to make: everything that decides its audio."""

    index: int
    id: str
    seed: int  # the job's seed
    stream_seed: int  # the seed of this clip's random stream
    schedule: temp.Schedule
    prime: dict | None  # {"source", "start_s", "seconds", ...}: the exact stretch, or None
    steer: temp.Steer | None = None  # the steering curve, its labels checked against the model's
    guidance: float | None = None  # the guidance weight (None: no guidance)
    min_p: temp.Schedule | None = None  # truncation curves; None: off
    top_p: temp.Schedule | None = None
    guard: GuardConfig | None = None  # None: no guard
    replay: list | None = None  # recorded guard interventions to apply (--again)
    replay_until: int = 0  # ...over this many samples (the recorded clip's length)

    @property
    def steer_key(self) -> list | None:
        """The part of the clip's id that says how it was steered (None when unsteered)."""
        return None if self.steer is None else [self.steer.spec, self.guidance]

    def controls_key(self) -> list:
        """What the truncation and guard add to the clip's id (nothing when off, so plain clips
        keep the ids they always had)."""
        key = [[c.control, c.spec] for c in (self.min_p, self.top_p) if c is not None]
        return key + ([["guard", self.guard.to_dict()]] if self.guard is not None else [])


@dataclass
class _Context:
    """The loaded checkpoint and the settings every clip of a job shares."""

    run_dir: Path
    model: SampleRNN
    ckpt_path: Path
    ckpt_sha256: str
    step: int | None
    sample_rate: int
    quantization: str
    levels: int
    device: torch.device
    stepper: FastStepper  # built once per job
    normalize: str = "peak"  # how the run's data was level-normalised (see inspire.audio.dataset.condition)
    prime_cache: dict = field(default_factory=dict)
    engine: str = "auto"  # "auto": the compiled engine for small CPU batches; or a recorded name ("numba-fp32"...)
    layouts: dict = field(default_factory=dict)  # precision -> inspire.samplernn.engine.Layout, built once per job

    @property
    def settings(self) -> PrepareSettings:
        return PrepareSettings(self.sample_rate, self.quantization, self.levels, normalize=self.normalize)

    @property
    def checkpoint(self) -> dict:
        return {"path": str(self.ckpt_path.resolve()), "sha256": self.ckpt_sha256, "step": self.step}


def _load(run_dir: Path, checkpoint_path: Path, device: str, *, int8: bool = False) -> _Context:
    dev = pick_device(device)
    local = os.environ.get("LOCAL_RANK")
    if dev.type == "cuda" and dev.index is None and local is not None:
        dev = process_gpu(int(local))  # torchrun: one GPU per process (round-robin if they outnumber GPUs)
    model, ckpt = ckpt_mod.load_model(checkpoint_path, device=dev)
    data = ckpt.get("data") or {}
    try:
        sr, kind, levels = int(data["sample_rate"]), str(data["quantization"]), int(data["levels"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(
            f"{checkpoint_path}: holds no data settings (sample_rate, quantization, levels)") from None
    if levels != model.cfg.levels:
        raise CheckpointError(f"{checkpoint_path}: data has {levels} levels but the model {model.cfg.levels}")
    if int8 and dev.type != "cpu":
        raise UserInputError(f"--int8 runs on the CPU only (device is {dev})")
    return _Context(run_dir, model, checkpoint_path, sha256_of(checkpoint_path), ckpt.get("step"), sr, kind, levels,
                    dev, FastStepper(model, int8=int8), normalize=str(data.get("normalize", "peak")))


# ----------------------------------------------------------------------------------------------
# Priming


def _prepared_file(ctx: _Context, path: str) -> np.ndarray:
    """A prime file as training data is prepared: read at the run's rate (any format, rate and
    channel count), then `inspire.audio.dataset.condition` with the run's settings. Cached per path."""
    if path not in ctx.prime_cache:
        audio, _ = read_audio(path, sample_rate=ctx.sample_rate)
        ctx.prime_cache[path] = condition(audio, ctx.settings)
    return ctx.prime_cache[path]


def _corpus(ctx: _Context):
    if "corpus" not in ctx.prime_cache:
        data = load_prepared(ctx.run_dir)
        mine = ctx.settings.fixed()
        if data.settings.fixed() != mine:
            raise DatasetError(
                f"{ctx.run_dir}: prepared data {data.settings.fixed()} differs from the checkpoint's {mine}")
        ctx.prime_cache["corpus"] = data
    return ctx.prime_cache["corpus"]


def _resolve_prime(ctx: _Context, request: dict | None, rng_seed: int) -> dict | None:
    """The exact stretch a clip is primed with: {"source", "start_s", "seconds"} (+ track/sha256)."""
    if request is None:
        return None
    sr, want = ctx.sample_rate, max(1, round(request["seconds"] * ctx.sample_rate))
    if request["source"] == "corpus":
        if "track" in request:  # already resolved (--again)
            return dict(request)
        data = _corpus(ctx)
        segs = data.segments("train") or data.segments("val")
        lengths = np.array([seg.end - seg.start for _, seg in segs], dtype=np.float64)
        rng = np.random.default_rng(rng_seed)
        pick = int(rng.choice(len(segs), p=lengths / lengths.sum()))
        track, seg = segs[pick]
        n = min(want, seg.end - seg.start)
        start = int(rng.integers(seg.start, seg.end - n + 1))
        return {"source": "corpus", "track": track.id, "start_s": round(start / sr, 6), "seconds": round(n / sr, 6)}
    q = _prepared_file(ctx, request["source"])
    if request.get("start_s") is None:
        start = max(0, q.size - want)
    else:
        start = round(request["start_s"] * sr)
        if start >= q.size:
            raise UserInputError(f"--prime-start {request['start_s']} s is beyond the end of {request['source']} "
                                 f"({q.size / sr:.2f} s)")
    n = min(want, q.size - start)
    return {"source": request["source"], "sha256": request["sha256"], "start_s": round(start / sr, 6),
            "seconds": round(n / sr, 6)}


def _prime_classes(ctx: _Context, prime: dict) -> np.ndarray:
    """The quantized samples of a resolved prime stretch (np.ndarray of classes)."""
    sr = ctx.sample_rate
    start, n = round(prime["start_s"] * sr), round(prime["seconds"] * sr)
    if prime["source"] == "corpus":
        data = _corpus(ctx)
        track = next((t for t in data.tracks if t.id == prime["track"]), None)
        if track is None:
            raise UserInputError(f"prime track {prime['track']!r} is no longer in {ctx.run_dir}'s prepared data")
        return data.array(track)[start : start + n]
    return _prepared_file(ctx, prime["source"])[start : start + n]


# ----------------------------------------------------------------------------------------------
# Steering


def _steering(ctx: _Context, specs: list[str] | tuple[str, ...] | None,
              guidance: float | None) -> list[temp.Steer | None]:
    """The job's steering curves, checked against the model's labels ([None]: unsteered)."""
    return checks.steering(specs, guidance, ctx.model.cfg.labels, source=ctx.ckpt_path)


def _labels_fn(ctx: _Context, batch: list[ClipPlan], n_samples: int):
    """The batch's label weights at given sample positions (sample.Labels), or None when no clip
    is steered (a labelled model then plays "no label")."""
    if all(p.steer is None for p in batch):
        return None
    import numpy as np
    import torch

    names, rows_n, sr = ctx.model.cfg.labels, ctx.model.cfg.label_rows, ctx.sample_rate
    last_s = (n_samples - 1) / sr
    none = temp.parse_steer(temp.STEER_NONE)
    curves = [(p.steer or none, (p.steer or none).rows(names)) for p in batch]

    def labels(positions):
        t = positions.cpu().numpy() / sr
        w = np.stack([s.weights(t, last_s, r, rows_n) for s, r in curves])  # (B, m, rows)
        return torch.from_numpy(w).to(ctx.device)

    return labels


# ----------------------------------------------------------------------------------------------
# Public API


def run_job(
    run_dir: str | os.PathLike,
    *,
    n: int,
    seconds: float = GENERATE.seconds,
    temperatures: list[str] | tuple[str, ...] = GENERATE.temperatures,
    min_ps: list[str] | tuple[str, ...] = GENERATE.min_ps,
    top_ps: list[str] | tuple[str, ...] = GENERATE.top_ps,
    guard: bool | GuardConfig = GENERATE.guard,
    seed: int = GENERATE.seed,
    checkpoint: str = GENERATE.checkpoint,
    out: str | os.PathLike | None = None,
    batch_size: int | None = None,
    prime: str | None = None,
    prime_seconds: float = GENERATE.prime_seconds,
    prime_start: float | None = None,
    include_prime: bool = False,
    device: str = "auto",
    progress: bool | str = False,
    plot: bool = False,
    shard: str | None = None,
    force: bool = False,
    int8: bool = False,
    threads: int | None = None,
    steers: list[str] | tuple[str, ...] | None = None,
    guidance: float | None = None,
) -> Path:
    """Generate `n` clips of `seconds` from RUN_DIR's checkpoint into a folder; return it.

    Resumes: clips already finished in the folder are skipped. `temperatures`, `min_ps`, `top_ps`:
    schedule specs (see inspire.schedule). `steers` (a model trained with labels): steering specs
    (inspire.schedule.parse_steer). The clips take every combination in turn, the temperature
    varying fastest, then min-p, top-p and steering: clip i takes temperature i % T, min-p
    (i // T) % M, and so on. `guidance`: a weight in [0, 10] mixing steered and unsteered
    predictions (about twice the compute). `guard`: True (default settings) or a GuardConfig to
    watch for collapse into noise and redraw (not with steering).
    `prime`: an audio file, "corpus" (a random stretch of a training track per clip) or
    "corpus:TRACK" (that prepared track from `prime_start`, the same for every clip).
    `shard`: "I/N" to make only clips i with i % N == I (default: torchrun's RANK/WORLD_SIZE).
    `force`: replace clips in the folder that were made with other settings instead of refusing.
    `int8`: int8 weights for the big matrices (CPU only; faster, not bit-identical to fp32).
    `threads`: CPU threads (None: the faster of one and all, measured at the start).
    `progress`: False, True (a bar on a terminal, a line every few seconds in a log) or "json"
    (JSON lines on stderr for a program: inspire.progress).
    """
    run_dir = Path(run_dir)
    schedules = temp.parse_many(list(temperatures))
    truncation = [[_active(c) for c in temp.parse_many(list(specs), control=control)]
                  for specs, control in ((min_ps, "min-p"), (top_ps, "top-p"))]
    guard_cfg = _guard_config(guard)
    checks.check_job(n=n, seconds=seconds, batch_size=batch_size)
    shard_i, shard_n = parse_shard(shard)
    prime_req = checks.prime_request(prime, prime_seconds, prime_start, run_dir=run_dir)
    ctx = _load(run_dir, checks.resolve(run_dir, str(checkpoint)), device, int8=int8)
    steering = _steering(ctx, steers, guidance)
    steered = steering != [None]
    checks.check_guard(guard_cfg is not None, steered=steered)

    job = {
        "n": n,
        "seconds": float(seconds),
        "temperatures": [s.spec for s in schedules],
        **_job_controls(truncation, guard_cfg),
        "seed": int(seed),
        "checkpoint": str(checkpoint),
        "prime": None if prime_req is None else {k: v for k, v in prime_req.items()},
        "include_prime": bool(include_prime),
        "int8": bool(int8),
    }
    if steered:
        job.update(steers=[s.spec for s in steering], guidance=guidance)
    if out is None:
        key = [ctx.ckpt_sha256, job["seed"], job["seconds"], job["temperatures"], checks.prime_key(prime_req),
               job["include_prime"]]
        key += ["int8"] if int8 else []
        key += [["steer", job["steers"], guidance]] if steered else []
        key += [[k, job[k]] for k in ("min_p", "top_p", "guard") if k in job]
        digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:6]
        label = f"step{ctx.step}" if ctx.step is not None else ctx.ckpt_path.stem
        out = run_dir / "clips" / f"{label}-seed{seed}-{seconds:g}s-{digest}"
    checks.check_length(float(seconds), ctx.sample_rate)
    checks.check_disk(Path(out), n=len(range(shard_i, n, shard_n)), seconds=float(seconds), sample_rate=ctx.sample_rate)
    plans = []
    sweep = temp.sweep(schedules, *truncation, steering)
    for i in range(shard_i, n, shard_n):
        s, min_p, top_p, st = temp.for_clip(sweep, i)
        plan = ClipPlan(i, "", int(seed), stream_seed(seed, i), s, prime_req, st, guidance if st is not None else None,
                        min_p=min_p, top_p=top_p, guard=guard_cfg)
        cid = clip_id(ctx.ckpt_sha256, seed, s.spec, i, checks.prime_key(prime_req), plan.steer_key,
                      plan.controls_key())
        plans.append(replace(plan, id=cid))
    return _execute(ctx, plans, Path(out), job=job, seconds=float(seconds), include_prime=include_prime,
                    batch_size=batch_size, progress=progress, plot=plot, force=force, threads=threads,
                    lock=f"shard-{shard_i}-of-{shard_n}")


def again(
    run_dir: str | os.PathLike,
    clip: str,
    *,
    seconds: float | None = None,
    out: str | os.PathLike | None = None,
    include_prime: bool | None = None,
    device: str = "auto",
    progress: bool | str = False,
    plot: bool = False,
    force: bool = False,
    int8: bool | None = None,
    threads: int | None = None,
) -> Path:
    """Regenerate one clip exactly from its id (or sidecar path), optionally longer; return the folder.

    Uses the checkpoint the sidecar names (found by its sha256 among RUN_DIR's checkpoints when
    the path now holds another), the same seed, index, schedule and prime stretch.
    """
    run_dir = Path(run_dir)
    side_path = find_clip(run_dir, clip)
    rec = clips.read(side_path)
    missing = [k for k in ("checkpoint", "temperature", "index", "seed", "seconds") if getattr(rec, k) is None]
    missing += [] if missing or "spec" in rec.temperature else ["temperature spec"]
    if missing:
        raise UserInputError(f"{side_path}: not a clip sidecar inspire can regenerate from (no {', '.join(missing)})")
    spec, index, seed = rec.temperature["spec"], rec.index, rec.seed
    seconds = float(rec.seconds if seconds is None else seconds)
    checks.check_job(n=1, seconds=seconds, batch_size=None)
    if int8 is None:
        int8 = rec.int8
    if isinstance(rec.extra.get("performance"), dict):  # a take recorded by `inspire play`
        from inspire.samplernn import play

        return play.again_take(run_dir, side_path, rec, seconds=None if seconds == float(rec.seconds) else seconds,
                               out=out, force=force)
    ctx = _load(run_dir, _find_checkpoint(run_dir, rec.checkpoint), device, int8=int8)
    ctx.engine = str(rec.extra.get("engine") or "torch")  # clips from before the engine: the torch stepper
    prime = rec.prime
    if include_prime is None:
        include_prime = bool(prime and prime.get("included"))
    prime_req = None if not prime else {k: v for k, v in prime.items() if k != "included"}
    if prime_req and prime_req["source"] != "corpus":
        path = Path(prime_req["source"])
        if not path.is_file():
            raise UserInputError(f"{side_path}: its prime file {path} is no longer there")
        if prime_req.get("sha256") and sha256_of(path) != prime_req["sha256"]:
            raise UserInputError(f"{side_path}: its prime file {path} has changed since; the clip cannot be made again")
    steer_spec = (rec.steer or {}).get("spec")
    guidance = (rec.steer or {}).get("guidance")
    steer = _steering(ctx, [steer_spec] if steer_spec else None, guidance)[0]
    min_p, top_p, guard_cfg, replay = _recorded_controls(rec, side_path)
    plan = ClipPlan(index, rec.id, seed, stream_seed(seed, index) if rec.stream_seed is None else rec.stream_seed,
                    temp.parse(spec), prime_req, steer, guidance, min_p=min_p, top_p=top_p, guard=guard_cfg,
                    replay=replay, replay_until=rec.samples or 0)
    if out is None:
        out = run_dir / "clips" / f"again-{rec.id}-{seconds:g}s"
    job = {"again": rec.id, "from": str(side_path), "seconds": seconds, "temperatures": [spec],
           **_job_controls([[min_p], [top_p]], guard_cfg), "seed": seed,
           "checkpoint": str(ctx.ckpt_path), "prime": prime_req, "include_prime": bool(include_prime),
           "int8": bool(int8)}
    if steer is not None:
        job.update(steers=[steer.spec], guidance=guidance)
    return _execute(ctx, [plan], Path(out), job=job, seconds=seconds, include_prime=include_prime,
                    batch_size=1, progress=progress, plot=plot, force=force, threads=threads)


def _active(curve: temp.Schedule) -> temp.Schedule | None:
    """A truncation curve, or None when it does nothing anywhere (min-p 0, top-p 1)."""
    return None if curve.neutral else curve


def _guard_config(guard: bool | GuardConfig | None) -> GuardConfig | None:
    """True/False or a GuardConfig -> a GuardConfig or None."""
    if guard is None or guard is False:
        return None
    return GuardConfig() if guard is True else guard


def _job_controls(truncation: list[list], guard_cfg: GuardConfig | None) -> dict:
    """The job's truncation and guard (for the manifest and the folder's name); nothing when off."""
    out = {}
    for name, curves in zip(("min_p", "top_p"), truncation, strict=True):
        if any(c is not None for c in curves):
            out[name] = [None if c is None else c.spec for c in curves]
    if guard_cfg is not None:
        out["guard"] = guard_cfg.to_dict()
    return out


def _recorded_controls(rec: clips.ClipRecord, side_path: Path) -> tuple:
    """(min_p, top_p, guard config, interventions) a clip's sidecar recorded."""
    curves = []
    for name, control in (("min_p", "min-p"), ("top_p", "top-p")):
        resolved = getattr(rec, name)
        try:
            curves.append(None if resolved is None else _active(temp.parse(resolved["spec"], control=control)))
        except (KeyError, TypeError):
            raise UserInputError(f"{side_path}: its {control} curve has no spec") from None
    if rec.guard is None:
        return curves[0], curves[1], None, None
    try:
        config = GuardConfig.from_dict(rec.guard["settings"])
        replay = check_replay(rec.guard["interventions"])
    except (KeyError, TypeError) as exc:
        raise UserInputError(f"{side_path}: its guard record is incomplete ({exc})") from None
    except UserInputError as exc:
        raise UserInputError(f"{side_path}: {exc}") from None
    return curves[0], curves[1], config, replay


def find_clip(run_dir: str | os.PathLike, clip: str) -> Path:
    """A clip's sidecar from its id (searched under RUN_DIR/clips/) or a path to its .json/.wav."""
    p = Path(clip)
    if p.suffix in (".json", ".wav") and clips.sidecar_path(p).is_file():
        return clips.sidecar_path(p)
    found = sorted((Path(run_dir) / "clips").glob(f"**/{clip}.json"), key=lambda f: f.stat().st_mtime)
    found = [f for f in found if f.with_suffix(".wav").is_file()]
    if not found:
        raise UserInputError(f"--again {clip}: no clip with that id under {Path(run_dir) / 'clips'}")
    return found[0]  # the oldest: the original, not a later regeneration


def _find_checkpoint(run_dir: Path, ck: dict) -> Path:
    path = Path(ck.get("path", ""))
    if path.is_file() and sha256_of(path) == ck.get("sha256"):
        return path
    cdir = checks.checkpoint_dir(run_dir)
    for cand in sorted(cdir.glob("*.pt")) if cdir.is_dir() else []:
        if sha256_of(cand) == ck.get("sha256"):
            return cand
    raise CheckpointError(
        f"{run_dir}: the checkpoint this clip was made with (step {ck.get('step')}, "
        f"sha256 {str(ck.get('sha256'))[:12]}…) "
        "is no longer there"
    )


# ----------------------------------------------------------------------------------------------
# Running a job


def _execute(ctx: _Context, plans: list[ClipPlan], out: Path, *, job: dict, seconds: float, include_prime: bool,
             batch_size: int | None, progress: bool | str, plot: bool, force: bool, threads: int | None = None,
             lock: str = "") -> Path:
    checks.check_length(seconds, ctx.sample_rate)
    out.mkdir(parents=True, exist_ok=True)
    with job_lock(out, "generated into", name=lock):
        return _execute_locked(ctx, plans, out, job=job, seconds=seconds, include_prime=include_prime,
                               batch_size=batch_size, progress=progress, plot=plot, force=force, threads=threads)


def _execute_locked(ctx: _Context, plans: list[ClipPlan], out: Path, *, job: dict, seconds: float,
                    include_prime: bool, batch_size: int | None, progress: bool | str, plot: bool, force: bool,
                    threads: int | None) -> Path:
    header = {"run": str(ctx.run_dir.resolve()), "checkpoint": ctx.checkpoint, "job": job}
    _check_folder(out, header, force=force)
    n_samples = max(1, round(seconds * ctx.sample_rate))
    gone = {} if force else clips.moved(out)
    if gone and any(p.id in gone for p in plans):
        away = [p for p in plans if p.id in gone]
        plans = [p for p in plans if p.id not in gone]
        print(f"generate: {len(away)} clip(s) of this job were curated away (e.g. to {Path(gone[away[0].id]).parent}); "
              "not making them again (--force does)", file=sys.stderr)
    pending = []
    for plan in plans:
        (out / f".{plan.id}.partial.wav").unlink(missing_ok=True)  # left by a killed run of ours
        if not _finished(out, plan, ctx, n_samples, include_prime, force=force):
            pending.append(plan)
    clips.rebuild_manifest(out, header)

    if batch_size is None:
        batch_size = GENERATE.gpu_batch if ctx.device.type == "cuda" else GENERATE.cpu_batch
    n_batches = math.ceil(len(pending) / batch_size) if pending else 0
    size = math.ceil(len(pending) / n_batches) if n_batches else 0  # balanced batches
    threads_before = _set_threads(ctx, size, threads) if pending else None
    have = len(plans) - len(pending)  # clips in the folder, shown beside the bar of audio seconds
    bar = _progress(len(pending) * seconds, enabled=progress)
    finished = False
    try:
        queue = [pending[b * size : (b + 1) * size] for b in range(n_batches)]
        while queue:
            if bar is not None:
                bar.set_postfix(f"clips {have}/{len(plans)}", folder=str(out), clips_done=have, clips_total=len(plans))
            batch = queue.pop(0)
            try:
                _generate_batch(ctx, batch, out, n_samples=n_samples, include_prime=include_prime, plot=plot, bar=bar)
            except torch.OutOfMemoryError:
                queue[:0] = _halve_after_oom(ctx, batch)  # each clip has its own random stream: same clips
                continue
            clips.rebuild_manifest(out, header)
            have += len(batch)
        if bar is not None:
            bar.set_postfix(f"clips {have}/{len(plans)}", folder=str(out), clips_done=have, clips_total=len(plans))
        finished = True
    finally:
        if bar is not None:
            bar.close(done=finished)  # stopped (Ctrl-C, an error): no "done" line
        if threads_before is not None:
            torch.set_num_threads(threads_before)
    if plans:
        done = len(plans) - len(pending)
        print(f"generate: {len(plans)} clip(s) in {out} ({done} already there)", file=sys.stderr)
    return out


def _halve_after_oom(ctx: _Context, batch: list[ClipPlan]) -> list[list[ClipPlan]]:
    """The batch that ran out of device memory, as two halves to run instead (its partial files
    were already removed). A clip's samples do not depend on its batch, so nothing changes."""
    if len(batch) == 1:
        raise InspireError(f"out of {ctx.device.type.upper()} memory generating even one stream; "
                           "use a smaller model or another device (--device cpu)")
    half = len(batch) // 2
    if ctx.device.type == "cuda":
        torch.cuda.empty_cache()
    print(f"generate: out of {ctx.device.type.upper()} memory at batch size {len(batch)}; going on with "
          f"{half} (--batch-size {half} avoids the retry)", file=sys.stderr)
    return [batch[:half], batch[half:]]


def _set_threads(ctx: _Context, batch: int, threads: int | None) -> int | None:
    """Set torch's CPU threads for the job; return the previous count (to restore) or None.

    None = measure (threads.fastest): a few steps at each candidate count, keep the fastest. On a
    CPU shared with other processes, several OpenMP threads per step can be many times slower than
    one (a thread descheduled at every barrier), while on an idle machine they are faster.
    """
    before = torch.get_num_threads()
    if ctx.device.type != "cpu":
        return None
    if threads is not None:
        torch.set_num_threads(max(1, threads))
        return before
    if before <= 1:
        return None
    n = max(2 * ctx.model.lookback, 64)

    def work() -> None:
        for _ in sample.stream(ctx.model, n_samples=n, temperature=torch.ones(batch, device=ctx.device),
                               seeds=list(range(batch)), stepper=ctx.stepper, block=n):
            pass

    fastest(work, candidates(before))
    return before


def _progress(audio_seconds: float, *, enabled: bool | str) -> Progress | None:
    """A bar on a terminal, a line every few seconds in a log, JSON lines for a program
    (enabled="json"; the studio reads them) (inspire.progress)."""
    if not enabled:
        return None
    return Progress(total=round(audio_seconds, 3), desc="generating", unit="s of audio", json_lines=enabled == "json")


def _generate_batch(ctx: _Context, batch: list[ClipPlan], out: Path, *, n_samples: int, include_prime: bool,
                    plot: bool, bar: Progress | None) -> None:
    model, sr, dev = ctx.model, ctx.sample_rate, ctx.device
    b = len(batch)
    engine = _engine_name(ctx, b)
    primes = [_resolve_prime(ctx, p.prime, p.stream_seed) for p in batch]
    history = state = None
    prime_audio = [None] * b
    classes = None
    labels = _labels_fn(ctx, batch, n_samples)
    guidance = batch[0].guidance  # one weight per job
    guarded = any(p.guard is not None for p in batch)
    if (labels is not None or guarded) and engine.startswith("numba"):
        # The compiled engine plays truncated clips, not steered (labels move per frame) or guarded ones.
        engine = engine.replace("numba", "torch", 1)
    if primes[0] is not None:
        classes = [np.asarray(_prime_classes(ctx, p), dtype=np.int64) for p in primes]
        if include_prime:
            prime_audio = [dequantize(c, kind=ctx.quantization, levels=ctx.levels) for c in classes]
        if engine.startswith("numba"):
            pass  # the engine primes itself, below
        elif labels is not None:  # each stream primed under its own label at the clip's start
            longest = max(c.size for c in classes)
            pad = silence_level(kind=ctx.quantization, levels=ctx.levels)
            rows = [np.concatenate([np.full(longest - c.size, pad, np.int64), c]) for c in classes]
            start = labels(torch.zeros(1, dtype=torch.long))[:, 0]  # (B, label_rows)
            history, state = sample.prime_state(model, torch.from_numpy(np.stack(rows)).to(dev), start,
                                                guided=guidance is not None)
        elif all(p == primes[0] for p in primes):  # one prime for all: warm once, share the state
            history, state = sample.prime_state(model, torch.from_numpy(classes[0]).to(dev).unsqueeze(0))
            history = history.expand(b, -1).contiguous()
            state.hidden = [h.expand(*h.shape[:-2], b, h.shape[-1]).contiguous() for h in state.hidden]
        else:
            longest = max(c.size for c in classes)
            pad = silence_level(kind=ctx.quantization, levels=ctx.levels)
            rows = [np.concatenate([np.full(longest - c.size, pad, np.int64), c]) for c in classes]
            history, state = sample.prime_state(model, torch.from_numpy(np.stack(rows)).to(dev))

    def curve(schedules: list) -> Callable:  # (start, n) -> (B, n) on the device; start may be per stream
        return sample.schedule_curve(schedules, n_samples=n_samples, sample_rate=sr, device=dev)

    controls = {"temperature": curve([p.schedule for p in batch])}
    for name, off in (("min_p", temp.parse("0", control="min-p")), ("top_p", temp.parse("1", control="top-p"))):
        if any(getattr(p, name) is not None for p in batch):  # the others get the neutral value (no effect)
            controls[name] = curve([getattr(p, name) or off for p in batch])
    seeds = [p.stream_seed for p in batch]
    logs: list = [None] * b
    writers = [_ClipWriter(out / f"{p.id}.wav", sr) for p in batch]
    try:
        for w, pa in zip(writers, prime_audio, strict=False):
            if pa is not None:
                w.write(pa)
        if engine.startswith("numba"):
            chunks = _engine_stream(ctx, engine, classes, seeds, {k: (lambda start, n, f=f: f(start, n).numpy())
                                                                  for k, f in controls.items()}, n_samples)
        elif any(p.guard is not None for p in batch):
            logs = []
            chunks = (c.numpy() for c in collapse_guard.stream(
                model, n_samples=n_samples, seeds=seeds, sample_rate=sr, quantization=ctx.quantization,
                config=batch[0].guard, history=history, state=state, stepper=ctx.stepper, log=logs,
                replay=[p.replay or [] for p in batch], replay_until=max(p.replay_until for p in batch),
                guarded=[p.guard is not None for p in batch], **controls))
        else:
            # On a GPU each top-tier frame of the loop is one CUDA graph: the same samples, no launch overhead.
            run_stream = graph.stream if dev.type == "cuda" else sample.stream
            chunks = (c.cpu().numpy() for c in run_stream(
                model, n_samples=n_samples, seeds=seeds, history=history, state=state, block=BLOCK_SAMPLES,
                stepper=ctx.stepper, labels=labels, guidance=guidance, **controls))
        for chunk in chunks:
            audio = dequantize(chunk, kind=ctx.quantization, levels=ctx.levels)  # (B, n) float32
            for w, row in zip(writers, audio, strict=False):
                w.write(row)
            if bar is not None:
                bar.update(round(b * audio.shape[1] / sr, 3))
        for plan, w, prime, log in zip(batch, writers, primes, logs, strict=True):
            w.commit()
            offset = prime["seconds"] if (prime and include_prime) else 0.0
            _write_sidecar(out, ctx, plan, prime, n_samples=n_samples, include_prime=include_prime, offset_s=offset,
                           interventions=log, extra={"engine": engine})
            if plot:
                curve = plan.schedule.resolved(n_samples, sr, offset_s=offset)
                _plot(out / f"{plan.id}.png", curve, offset, n_samples / sr)
    finally:
        for w in writers:
            w.abort()


def _engine_name(ctx: _Context, streams: int) -> str:
    """Which engine makes a batch: "numba-fp32"/"numba-int8" (compiled, small CPU batches) or
    "torch-fp32"/"torch-int8" (the batched stepper). A recorded name (--again) is kept, so the
    clip replays with the arithmetic that made it."""
    precision = "int8" if ctx.stepper.int8 else "fp32"
    if ctx.engine == "auto":
        small = ctx.device.type == "cpu" and streams <= ENGINE_MAX_BATCH[precision]
        return f"numba-{precision}" if small and numba_available() else f"torch-{precision}"
    if ctx.engine.startswith("numba") and not numba_available():
        print("generate: warning: this clip was made by the compiled engine but numba is not installed; the torch "
              "path computes the same function and may part from it after a few seconds", file=sys.stderr)
        return f"torch-{precision}"
    return ctx.engine


def _engine_stream(ctx: _Context, name: str, primes: list | None, seeds: list[int], curves: dict, n_samples: int):
    """Blocks (B, n) of classes from the compiled engine: primed like `prime_state`, the
    controls' curves ("temperature", and "min_p"/"top_p" when used: (start, n) -> (B, n)), the
    streams' own random numbers."""
    precision = name.split("-", 1)[1]
    if precision not in ctx.layouts:
        ctx.layouts[precision] = Layout(ctx.model, precision=precision)
    engine = Engine(ctx.model, streams=len(seeds), precision=precision, backend="numba", layout=ctx.layouts[precision])
    if primes is not None:
        longest = max(c.size for c in primes)
        pad = silence_level(kind=ctx.quantization, levels=ctx.levels)
        engine.prime(np.stack([np.concatenate([np.full(longest - c.size, pad, np.int64), c]) for c in primes]))
    noise = Uniforms(seeds)
    for start in range(0, n_samples, BLOCK_SAMPLES):
        n = min(BLOCK_SAMPLES, n_samples - start)
        at = {k: f(start, n).T for k, f in curves.items()}
        yield engine.generate(at["temperature"], noise.next(n), min_p=at.get("min_p"), top_p=at.get("top_p"))


class _ClipWriter:
    """Streams one clip to `.<id>.partial.wav`; `commit` renames it to `<id>.wav` once whole."""

    def __init__(self, path: Path, sample_rate: int):
        self.path, self.tmp = path, path.with_name(f".{path.stem}.partial.wav")
        self.file = sf.SoundFile(str(self.tmp), "w", samplerate=sample_rate, channels=1, subtype="PCM_16", format="WAV")

    def write(self, x: np.ndarray) -> None:
        try:
            self.file.write(np.clip(x, -1.0, 1.0))
        except (OSError, RuntimeError) as exc:
            if getattr(exc, "errno", None) == errno.ENOSPC or "space" in str(exc).lower():
                raise DiskFullError(f"{self.path}: disk full while writing; finished clips are intact") from exc
            raise

    def commit(self) -> None:
        self.file.close()
        with open(self.tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)
        self.file = None

    def abort(self) -> None:
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
            self.tmp.unlink(missing_ok=True)
            self.file = None


# ----------------------------------------------------------------------------------------------
# Sidecars and the manifest


def _record(ctx: _Context, plan: ClipPlan, prime: dict | None, *, n_samples: int, include_prime: bool,
            offset_s: float, interventions: list | None = None) -> clips.ClipRecord:
    """What made a clip, as its sidecar records it. Guard interventions are at sample positions
    of the generated audio (an included prime comes before them in the file)."""
    guard = None if plan.guard is None else {"settings": plan.guard.to_dict(), "interventions": interventions or []}
    return clips.ClipRecord(
        id=plan.id,
        file=f"{plan.id}.wav",
        run=str(ctx.run_dir.resolve()),
        checkpoint=ctx.checkpoint,
        seed=plan.seed,
        index=plan.index,
        stream_seed=plan.stream_seed,
        temperature=plan.schedule.resolved(n_samples, ctx.sample_rate, offset_s=offset_s),
        min_p=None if plan.min_p is None else plan.min_p.resolved(n_samples, ctx.sample_rate, offset_s=offset_s),
        top_p=None if plan.top_p is None else plan.top_p.resolved(n_samples, ctx.sample_rate, offset_s=offset_s),
        guard=guard,
        steer=None if plan.steer is None else {**plan.steer.resolved(n_samples, ctx.sample_rate, offset_s=offset_s),
                                               "guidance": plan.guidance},
        seconds=round(n_samples / ctx.sample_rate, 6),  # generated audio, without an included prime
        samples=n_samples,
        sample_rate=ctx.sample_rate,
        quantization=ctx.quantization,
        levels=ctx.levels,
        prime=None if prime is None else {**prime, "included": bool(include_prime)},
        int8=bool(ctx.stepper is not None and ctx.stepper.int8),
        software=f"inspire {__version__}",
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )


def _write_sidecar(out: Path, ctx: _Context, plan: ClipPlan, prime: dict | None, *, extra: dict | None = None,
                   fields: dict | None = None, **kw) -> None:
    """Write a clip's sidecar; what later stages added to an earlier one (curation, a person's
    marks, keys of newer versions) is kept. An unreadable earlier sidecar is replaced. `extra`:
    keys beside the record's fields (the engine that made the clip, a take's performance);
    `fields`: record fields to set otherwise (a take's temperature as played)."""
    new = replace(_record(ctx, plan, prime, **kw), **(fields or {}), extra=dict(extra or {}))
    end = new.duration_s

    def keep_later_stages(old: clips.ClipRecord) -> clips.ClipRecord:
        # A person's regions past the end of a clip made shorter (--again --seconds) are cut to it.
        regions = tuple((a, min(b, end)) for a, b in old.marks.regions if a < end)
        return replace(new, curation=old.curation, marks=replace(old.marks, regions=regions),
                       extra={**old.extra, **new.extra})

    try:
        clips.update(out / new.file, keep_later_stages, create=True)
    except InspireError:  # the old sidecar is not a readable clip record: replaced (only with --force)
        clips.write(new, out)


def _finished(out: Path, plan: ClipPlan, ctx: _Context, n_samples: int, include_prime: bool, *, force: bool) -> bool:
    """Whether the folder already holds this clip, whole and made the same way."""
    side, wav = clips.sidecar_path(out / f"{plan.id}.wav"), out / f"{plan.id}.wav"
    if not (side.is_file() and wav.is_file()):
        return False
    try:
        r = clips.read(side)
    except InspireError as exc:  # unreadable: set it aside and make the clip again
        os.replace(side, side.with_name(side.name + ".corrupt"))
        print(f"generate: {side} is corrupt ({str(exc).removeprefix(str(side) + ': ')}); kept as "
              f"{side.name}.corrupt, making the clip again", file=sys.stderr)
        return False
    try:
        same = (
            r.samples == n_samples
            and r.checkpoint["sha256"] == ctx.ckpt_sha256
            and r.temperature["spec"] == plan.schedule.spec
            and all((getattr(r, k) or {}).get("spec") == (c.spec if c else None)
                    for k, c in (("min_p", plan.min_p), ("top_p", plan.top_p)))
            and (r.guard or {}).get("settings") == (plan.guard.to_dict() if plan.guard else None)
            and (r.steer or {}).get("spec") == (plan.steer.spec if plan.steer else None)
            and (r.steer or {}).get("guidance") == plan.guidance
            and r.stream_seed == plan.stream_seed
            and bool(r.prime) == bool(plan.prime)
            and r.int8 == bool(ctx.stepper.int8)
            and (not r.prime or bool(r.prime.get("included")) == bool(include_prime))
        )
    except (InspireError, KeyError, TypeError):
        same = False
    if same or force:
        return same
    raise UserInputError(
        f"{side} was made with other settings (length, checkpoint, prime, steering, truncation or guard); use "
        "another --out, "
        "or --force to replace it"
    )


def _check_folder(out: Path, header: dict, *, force: bool) -> None:
    old = None if force else clips.read_manifest(out)
    if old is None:
        return  # absent or unreadable: it is rebuilt from the sidecars
    try:
        old_job, old_sha = old.get("job", {}), old.get("checkpoint", {}).get("sha256")
    except AttributeError:
        return
    job = header["job"]
    keys = ("seconds", "temperatures", "seed", "prime", "include_prime", "int8")
    diff = [k for k in keys if k in old_job and old_job.get(k) != job.get(k)]
    diff += [k for k in ("steers", "guidance", "min_p", "top_p", "guard")  # absent = unsteered, untruncated, unguarded
             if old_job.get(k) != job.get(k)]
    if old_sha and old_sha != header["checkpoint"]["sha256"]:
        diff.insert(0, "checkpoint")
    if diff:
        raise UserInputError(
            f"{out} holds another job's clips (different {', '.join(diff)}); use another --out, or --force to add to it"
        )


def _plot(path: Path, curve: dict, prime_s: float, total_s: float) -> None:
    """A small picture of a clip's temperature curve, PNG (no pyplot: safe in any process)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.0, 1.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot(curve["times_s"], curve["values"], color="#c0392b", lw=1.5)
    if prime_s > 0:
        ax.axvspan(0, prime_s, color="0.85", lw=0)
        ax.text(prime_s / 2, 0.5, "prime", transform=ax.get_xaxis_transform(), ha="center", va="center", fontsize=7)
    ax.set_xlim(0, max(prime_s + total_s, 1e-3))
    lo, hi = min(curve["values"]), max(curve["values"])
    pad = max(0.05, 0.1 * (hi - lo))
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("seconds", fontsize=7)
    ax.set_ylabel("temperature", fontsize=7)
    ax.set_title(curve["spec"], fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
