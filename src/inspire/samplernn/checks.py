"""What a generate job asks for, checked before torch is imported: the numbers (`check_job`), the
length a WAV file can hold (`check_length`), room on the disk (`check_disk`), the checkpoint it
names (`resolve`: best, last, a step number or a path), the prime (`prime_request`) and the
steering (`steering`: the specs against the model's labels, the guidance weight, no guard with it;
`run_labels` reads a run's label names from RUN/config.json).

`inspire generate` runs these checks itself; they live apart from it, with no torch, so that the
studio refuses a bad form with the command line's own messages before it starts a job. The run
folder's checkpoint names (RUN/checkpoints/step-00000500.pt, best.pt, last.pt) are defined here
too; `inspire.samplernn.checkpoint` uses them.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

from inspire import schedule as curves
from inspire.audio.dataset import load_prepared
from inspire.audio.io import sha256_of
from inspire.errors import CheckpointError, UserInputError

STEP_RE = re.compile(r"^step-(\d+)\.pt$")
MAX_GUIDANCE = 10.0  # guidance weights run from 0 (unsteered) through 1 (plain steering) to this
CORPUS = "corpus"  # --prime corpus: a random stretch of a training track per clip; corpus:TRACK a chosen one


# ---- checkpoints ---------------------------------------------------------------------------


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_path(run_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step-{step:08d}.pt"


def list_steps(run_dir: str | Path) -> list[int]:
    cdir = checkpoint_dir(run_dir)
    if not cdir.is_dir():
        return []
    return sorted(int(m.group(1)) for f in cdir.iterdir() if (m := STEP_RE.match(f.name)))


def resolve(run_dir: str | Path, which: str = "best") -> Path:
    """'best', 'last', a step number, or a path -> an existing checkpoint file."""
    cdir = checkpoint_dir(run_dir)
    if which in ("best", "last"):
        p = cdir / f"{which}.pt"
        if which == "best" and not p.exists() and (cdir / "last.pt").exists():
            p = cdir / "last.pt"  # no validation yet: the latest is the best we know
        if not p.exists():
            raise CheckpointError(f"{run_dir}: no {which} checkpoint yet (train first: inspire train {run_dir})")
        return p
    if which.isdigit():
        p = step_path(run_dir, int(which))
        if not p.exists():
            have = ", ".join(str(s) for s in list_steps(run_dir)) or "none"
            raise CheckpointError(f"{run_dir}: no checkpoint at step {which} (kept steps: {have})")
        return p
    p = Path(which)
    if not p.is_file():
        raise CheckpointError(f"{which}: no such checkpoint (use best, last, a step number or a path)")
    return p


# ---- the job's numbers ---------------------------------------------------------------------


def check_job(*, n: int, seconds: float, batch_size: int | None) -> None:
    if not isinstance(n, int) or n < 1:
        raise UserInputError(f"-n must be at least 1, got {n}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise UserInputError(f"--seconds must be > 0, got {seconds}")
    if batch_size is not None and batch_size < 1:
        raise UserInputError(f"--batch-size must be at least 1, got {batch_size}")


def check_length(seconds: float, sample_rate: int) -> None:
    wav_max = (2**32 - 1 - 44) // 2  # a WAV's sizes are 32-bit: at most 4 GiB of 16-bit mono samples
    if seconds * sample_rate > wav_max:
        raise UserInputError(f"--seconds {seconds:g}: too long for a WAV file (at most {wav_max // sample_rate} s "
                             f"at {sample_rate} Hz, 4 GB of 16-bit audio)")


def check_disk(out: Path, *, n: int, seconds: float, sample_rate: int) -> None:
    """Refuse a job whose clips cannot fit on the disk (before planning them: `-n 1e11` must not
    fill memory with plans first)."""
    need = n * (round(seconds * sample_rate) * 2 + 2048)  # 16-bit audio + a sidecar's worth
    folder = Path(out)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if need > free:
        raise UserInputError(f"{n:,} clip(s) of {seconds:g} s need about {need / 1e9:,.1f} GB; {folder} has "
                             f"{free / 1e9:,.1f} GB free: ask for fewer or shorter clips, or another --out")


# ---- the prime -----------------------------------------------------------------------------


def prime_request(prime: str | None, seconds: float, start_s: float | None, *,
                  run_dir: str | Path | None = None) -> dict | None:
    """What --prime asked for, checked: None; {"source": "corpus", "seconds"} (a random stretch of
    the training data per clip); {"source": "corpus", "track", "start_s", "seconds"} for
    `corpus:TRACK` (that stretch of a prepared track, by id or name, for every clip: from
    `start_s`, by default its last `seconds`; needs `run_dir`); or {"source": path, "sha256",
    "seconds", "start_s"} for an audio file (read later, at the run's sample rate)."""
    if prime is None:
        return None
    if not (seconds > 0 and math.isfinite(seconds)):
        raise UserInputError(f"--prime-seconds must be > 0, got {seconds}")
    if start_s is not None and not (start_s >= 0 and math.isfinite(start_s)):
        raise UserInputError(f"--prime-start must be >= 0, got {start_s}")
    if prime == CORPUS:
        return {"source": CORPUS, "seconds": float(seconds)}
    if prime.startswith(CORPUS + ":"):
        return _corpus_stretch(prime, prime[len(CORPUS) + 1:], seconds, start_s, run_dir)
    path = Path(prime)
    if not path.is_file():
        raise UserInputError(f"--prime {prime}: no such file (give an audio file, 'corpus' or 'corpus:TRACK')")
    return {"source": str(path.resolve()), "sha256": sha256_of(path), "seconds": float(seconds), "start_s": start_s}


def _corpus_stretch(prime: str, name: str, seconds: float, start_s: float | None, run_dir) -> dict:
    if run_dir is None:
        raise UserInputError(f"--prime {prime}: a training track needs the run folder")
    data = load_prepared(run_dir)
    wanted = name.strip()
    track = (next((t for t in data.tracks if t.id == wanted), None)
             or next((t for t in data.tracks if t.name == wanted), None)
             or next((t for t in data.tracks if t.name.lower() == wanted.lower()), None))
    if track is None:
        names = ", ".join(t.name for t in data.tracks)
        raise UserInputError(f"--prime {prime}: {run_dir} has no prepared track {wanted!r} (tracks: {names})")
    sr = data.settings.sample_rate
    want = max(1, round(seconds * sr))
    if start_s is None:
        start = max(0, track.samples - want)
    else:
        start = round(start_s * sr)
        if start >= track.samples:
            raise UserInputError(f"--prime-start {start_s} s is beyond the end of track {track.name} "
                                 f"({track.samples / sr:.2f} s)")
    n = min(want, track.samples - start)
    return {"source": CORPUS, "track": track.id, "start_s": round(start / sr, 6), "seconds": round(n / sr, 6)}


def prime_key(request: dict | None) -> list | None:
    """The part of a clip's id that says how it was primed (None when unprimed)."""
    if request is None:
        return None
    if request["source"] == CORPUS:
        if "track" in request:  # one chosen stretch of the corpus
            return [CORPUS, request["track"], request["start_s"], request["seconds"]]
        return [CORPUS, request["seconds"]]
    return [request["sha256"], request.get("start_s"), request["seconds"]]


# ---- steering ------------------------------------------------------------------------------


def check_guidance(guidance: float | None, *, steered: bool) -> None:
    """--guidance: None, or a weight in [0, MAX_GUIDANCE], and only with --steer."""
    if guidance is not None and not (math.isfinite(guidance) and 0.0 <= guidance <= MAX_GUIDANCE):
        raise UserInputError(f"--guidance must be between 0 and {MAX_GUIDANCE:g} (1 = plain steering), got {guidance}")
    if guidance is not None and not steered:
        raise UserInputError("--guidance needs --steer (it pushes each clip towards its steering labels)")


def check_steer_labels(names, source) -> None:
    """A model trained without labels (`names` empty) cannot be steered; `source` names it."""
    if not names:
        raise UserInputError(
            f"--steer: {source} was trained without labels; train with --label-by track "
            "(or folder, or a CSV of sections) to steer"
        )


def check_guard(guard: bool, *, steered: bool) -> None:
    if guard and steered:
        raise UserInputError("--guard cannot watch steered clips (their labels follow one clock for the whole batch, "
                             "a redrawn stream its own); leave out --guard or --steer")


def steering(specs, guidance: float | None, names, *, source) -> list:
    """The job's steering curves (inspire.schedule.Steer), each checked against the model's label
    `names` (empty: a model trained without labels, named by `source` in the message); [None]
    when unsteered. UserInputError with `inspire generate`'s message otherwise."""
    check_guidance(guidance, steered=bool(specs))
    if not specs:
        return [None]
    steers = curves.parse_steers(list(specs))
    check_steer_labels(names, source)
    return [s.bind(names) for s in steers]


def run_labels(run_dir: str | Path) -> list[str] | None:
    """The label names of a run's model from RUN/config.json (written by `inspire train`, plain
    JSON): [] for a model trained without labels, None when the file is missing or unreadable."""
    try:
        model = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))["model"]
        labels = model.get("labels") or []
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return [str(x) for x in labels] if isinstance(labels, (list, tuple)) else None
