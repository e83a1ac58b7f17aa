"""The runs view's data: a run's training curve, its checkpoints with their previews, and the
checkpoint the musician chose to generate from.

Read from the run folder as `inspire train` writes it (see samplernn/train.py, checkpoint.py):

    RUN/metrics.jsonl                               one JSON row per log step ("step",
                                                    "train_bits"; "val_bits" and "baseline_bits"
                                                    at validations)
    RUN/checkpoints/step-00000500.pt, last.pt, best.pt
    RUN/previews/step-00000500/temperature-0.95.wav one preview per temperature per checkpoint

and written by the studio, only this small file (atomically):

    RUN/studio.json   {"format_version": 1, "checkpoint": "step-00000500" | null, "chosen": ISO time}

"checkpoint" is the one the musician marked to generate from after auditioning the previews
(`inspire generate RUN --checkpoint 500` uses it by step number). Unknown keys are kept.
No torch: checkpoints are listed by name, never opened.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from inspire.errors import UserInputError
from inspire.files import read_json, write_json
from inspire.samplernn.checks import run_labels

STUDIO_FILE = "studio.json"
FORMAT_VERSION = 1
_STEP_DIR = re.compile(r"^step-(\d+)$")
_STEP_FILE = re.compile(r"^step-(\d+)\.pt$")
_PREVIEW = re.compile(r"^temperature-(\d+(?:\.\d+)?)\.wav$")


def metrics(run: Path, *, since: int = 0) -> dict:
    """Rows of RUN/metrics.jsonl from line `since` on: {"rows", "next", "baseline_bits"}.

    `next` is the line count to ask from next time (the page polls while training runs). A last
    line still being written (no newline yet) is left for the next call; unreadable lines are
    skipped. A missing file gives no rows."""
    path = run / "metrics.jsonl"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {"rows": [], "next": 0, "baseline_bits": None}
    lines = text.split("\n")[:-1]  # the piece after the last newline is unfinished
    since = since if 0 <= since <= len(lines) else 0  # a restarted run's log is shorter: start over
    rows = []
    for line in lines[since:]:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int):
            rows.append(row)
    baseline = next((r["baseline_bits"] for r in reversed(rows) if r.get("baseline_bits") is not None), None)
    return {"rows": rows, "next": len(lines), "baseline_bits": baseline}


def checkpoints(run: Path) -> list[dict]:
    """Every step that has a checkpoint file or previews, newest first:
    {"name": "step-00000500", "step", "file" (bool: the .pt is still there), "best", "last",
    "previews": [{"temperature", "path"}]} with paths relative to RUN."""
    cdir, pdir = run / "checkpoints", run / "previews"
    steps: dict[int, dict] = {}

    def entry(step: int) -> dict:
        return steps.setdefault(step, {"name": f"step-{step:08d}", "step": step, "file": False,
                                       "best": False, "last": False, "previews": []})

    for name in _listdir(cdir):
        m = _STEP_FILE.match(name)
        if m:
            entry(int(m.group(1)))["file"] = True
    for name in _listdir(pdir):
        m = _STEP_DIR.match(name)
        if not m or not (pdir / name).is_dir():
            continue
        previews = []
        for wav in _listdir(pdir / name):
            t = _PREVIEW.match(wav)
            if t:
                previews.append({"temperature": float(t.group(1)), "path": f"previews/{name}/{wav}"})
        entry(int(m.group(1)))["previews"] = sorted(previews, key=lambda p: p["temperature"])
    for alias in ("best", "last"):
        target = cdir / f"{alias}.pt"
        for e in steps.values():
            if e["file"] and _same_file(target, cdir / f"{e['name']}.pt"):
                e[alias] = True
    return sorted(steps.values(), key=lambda e: -e["step"])


def choice(run: Path) -> str | None:
    """The checkpoint name chosen in RUN/studio.json, or None."""
    data = _read_studio(run)
    value = data.get("checkpoint")
    return value if isinstance(value, str) else None


def choose(run: Path, name: str | None) -> dict:
    """Record `name` ("step-00000500", a step number, or None to clear) as the checkpoint to
    generate from; returns the new RUN/studio.json content. UserInputError for a step the run
    does not have."""
    if name is not None:
        text = str(name).strip()
        m = _STEP_DIR.match(text) or re.fullmatch(r"(\d+)", text)
        if not m:
            raise UserInputError(f"checkpoint: expected a name like step-00000500 or a step number, got {name!r}")
        step = int(m.group(1))
        known = {e["step"]: e["name"] for e in checkpoints(run)}
        if step not in known:
            have = ", ".join(str(s) for s in sorted(known)) or "none"
            raise UserInputError(f"{run}: no checkpoint or previews at step {step} (steps: {have})")
        name = known[step]
    data = _read_studio(run)
    data.update(format_version=FORMAT_VERSION, checkpoint=name,
                chosen=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    write_json(run / STUDIO_FILE, data)
    return data


def summary(run: Path) -> dict:
    """What the runs view lists for a run: its name, checkpoints with previews, the choice, and the
    label names a model trained with labels can be steered by (RUN/config.json; [] for a model
    trained without, None when unknown)."""
    return {"name": run.name, "checkpoints": checkpoints(run), "chosen": choice(run), "labels": run_labels(run)}


def _read_studio(run: Path) -> dict:
    path = run / STUDIO_FILE
    if not path.is_file():
        return {}
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}  # unreadable: the next choice writes it afresh
    return data if isinstance(data, dict) else {}


def _listdir(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _same_file(a: Path, b: Path) -> bool:
    """best.pt and last.pt are hard links to a step file where the filesystem allows."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
