"""The studio's background jobs: `inspire generate` and `inspire compose`, run as the command line runs them.

A job is a subprocess, `python -m inspire generate ...` or `python -m inspire compose ...`, with
this interpreter and this copy of inspire: the code is literally the command line's (the same
clip ids, sidecars and resuming), a crash in it cannot take the server down, and cancelling is
SIGTERM (generate then keeps its finished clips and drops the unfinished ones). generate runs
with --progress-json; its JSON lines give the progress, the ETA and the clips folder. Everything
else a job prints goes to its log; its last "inspire ...: error: ..." line is its error.

Every form is checked here before a job starts, with the command line's own checks and messages
(inspire.schedule, inspire.samplernn.checks, inspire.compose): a refusal is 400 {"error", "field"}
naming the form field (and "index" for the n-th curve of a sweep: temperature, min_p, top_p,
steer; "part" and "key" for the arrangement's part and key when the message names them).

This module owns the job record, written atomically whenever the job changes:

    RUN/studio/jobs/<id>.json   {"format_version": 1, "id", "kind": "generate" | "render", "state",
                                 "argv" (after `inspire`), "request", "created", "queued", "started",
                                 "ended", "done", "total", "fraction", "eta_s", "folder", "error",
                                 "interrupted", "returncode", "resumed", "outputs"}
    RUN/studio/jobs/<id>.log    what the command printed (not its progress lines)

so a restarted studio lists its jobs; keys it does not know survive. A job that was queued or
running when its studio stopped is "failed" with "interrupted": true, and resuming it runs the
same command again (generate skips the clips it finished; ids are deterministic).

States: queued -> running -> done | failed | cancelled; a failed or cancelled job resumes (back
to queued). Per run one generate job runs at a time and the next waits queued; a copy of a job
that is already queued or running is refused (409, as the command line's folder lock would).
Renders start at once, one per piece name. Many tabs see the same jobs: the state is here.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import inspire
from inspire import clips
from inspire import schedule as curves
from inspire.audio.dataset import load_prepared
from inspire.compose import arrangement as arrangement_format
from inspire.compose import master
from inspire.compose.compose import check_delivery
from inspire.config import GENERATE
from inspire.errors import InspireError
from inspire.files import read_json, write_json, write_text
from inspire.samplernn import checks
from inspire.studio import runs
from inspire.studio.folders import Roots
from inspire.studio.server import ApiError, _json_body

FORMAT_VERSION = 1
STATES = ("queued", "running", "done", "failed", "cancelled")
ACTIVE = ("queued", "running")
JOBS_FOLDER = ("studio", "jobs")  # RUN/studio/jobs/
PIECES = "pieces"  # RUN/pieces/NAME.wav, .toml, .json, .labels.txt, NAME-stems/
RENDER_SAMPLE_RATE = 48000  # what a DAW session expects
RENDER_BIT_DEPTH = 24
KILL_AFTER_S = 15.0  # a cancelled job still running this long after SIGTERM is killed
TAIL_LINES = 40  # lines of a job's output kept in memory (the log file has them all)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.\-]{0,99}$")
_ERROR_LINE = re.compile(r"^inspire \w+: error: (.*)$")
_PART_KEY = re.compile(r": part (\d+) \([^)]*\): (\w+)")  # "piece.toml:12: part 3 (clip-0007): out_s: ..."
GENERATE_KEYS = ("run", "checkpoint", "n", "seconds", "temperature", "min_p", "top_p", "guard", "steer", "guidance",
                 "seed", "prime")
TRUNCATION = (("min_p", "min-p"), ("top_p", "top-p"))  # form field, control (and flag: --min-p, --top-p)
RENDER_KEYS = ("arrangement", "name", "run", "overwrite", "stems", "sample_rate", "bit_depth")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _refuse(message: str, field_name: str | None = None, *, status: int = 400, **extra) -> ApiError:
    return ApiError(status, message, **({"field": field_name} if field_name else {}), **extra)


# ---- the record ----------------------------------------------------------------------------


@dataclass
class Job:
    """One job as its record holds it (see the module docstring)."""

    id: str
    kind: str  # "generate" | "render"
    run: str  # the run folder (absolute)
    argv: list  # the command after `inspire`: ["generate", RUN, "-n", "8", ...]
    request: dict  # the form as checked
    state: str = "queued"
    created: str = ""
    queued: str = ""  # when it last entered the queue (a resumed job queues again)
    started: str | None = None
    ended: str | None = None
    done: float = 0  # generate: clips finished; render: 0 or 1
    total: float = 0  # generate: clips asked for; render: 1
    fraction: float = 0.0  # 0..1, finer than done/total (generate: seconds of audio made)
    eta_s: float | None = None
    folder: str | None = None  # generate: the clips folder, once generate has said it
    error: str | None = None
    interrupted: bool = False  # the studio stopped while it was queued or running
    returncode: int | None = None
    resumed: int = 0
    outputs: dict | None = None  # render: the piece's files, relative to the run
    extra: dict = field(default_factory=dict)  # keys of a newer version, kept

    def to_json(self) -> dict:
        out = {k: v for k, v in self.extra.items()}
        out.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"})
        return {"format_version": FORMAT_VERSION, **out}

    @classmethod
    def from_json(cls, d: dict) -> "Job":
        known = {f.name for f in fields(cls)} - {"extra"}
        job = cls(**{k: v for k, v in d.items() if k in known})
        job.extra = {k: v for k, v in d.items() if k not in known and k != "format_version"}
        if job.state not in STATES:
            raise ValueError(f"unknown state {job.state!r}")
        return job

    @property
    def command(self) -> str:
        """The command line that does the same, as a person would type it."""
        return shlex.join(["inspire", *self.argv])


def jobs_folder(run: str | os.PathLike) -> Path:
    return Path(run).joinpath(*JOBS_FOLDER)


def save(job: Job) -> None:
    write_json(jobs_folder(job.run) / f"{job.id}.json", job.to_json())


def load_all(run: str | os.PathLike) -> list[Job]:
    """The run's job records (unreadable ones are passed over)."""
    out = []
    folder = jobs_folder(run)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            job = Job.from_json(read_json(path))
        except (OSError, ValueError, TypeError):
            continue
        if job.id == path.stem:
            out.append(job)
    return out


# ---- the manager ---------------------------------------------------------------------------


class Jobs:
    """The studio's jobs: checks forms, starts and watches subprocesses, keeps the records."""

    def __init__(self, roots: Roots, *, python: str = sys.executable):
        self.roots = roots
        self.python = python
        self._lock = threading.RLock()
        self._jobs: dict[str, Job] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self._tails: dict[str, deque] = {}
        self._cancelling: set[str] = set()
        self._closing = False
        self._manifests: dict[str, tuple] = {}  # folder -> (mtime, ids by index)
        for root in roots.runs:
            for job in load_all(root.path):
                if job.state in ACTIVE:
                    self._interrupted(job)
                self._jobs[job.id] = job

    def _interrupted(self, job: Job) -> None:
        """A job the studio stopped with (or without) it: failed, to resume, unless a render
        actually finished (its piece is there, written after the job started)."""
        if job.kind == "render" and job.state == "running" and job.started and self._render_finished(job):
            job.state, job.ended, job.done = "done", job.ended or _now(), 1
            job.outputs = _render_outputs(job)
        else:
            was = job.state
            job.state, job.interrupted, job.ended = "failed", True, job.ended or _now()
            job.error = (f"the studio stopped while this job was {was}; resume it to run the same command again"
                         + (" (finished clips are kept)" if job.kind == "generate" else ""))
        save(job)

    @staticmethod
    def _render_finished(job: Job) -> bool:
        piece = Path(job.run) / PIECES / f"{job.request.get('name')}.json"
        try:
            started = datetime.fromisoformat(job.started).timestamp()
            return piece.stat().st_mtime >= started - 1
        except (OSError, ValueError, TypeError):
            return False

    # ---- asking ----------------------------------------------------------------------------

    def list(self, *, run: str | None = None) -> list[Job]:
        with self._lock:
            jobs = [j for j in self._jobs.values() if run is None or j.run == run]
        return sorted(jobs, key=lambda j: (j.created, j.id), reverse=True)

    def get(self, job_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r} (GET /api/jobs lists them)")
        return job

    def tail(self, job_id: str) -> list[str]:
        with self._lock:
            return list(self._tails.get(job_id, ()))

    def clips_of(self, job: Job) -> list[str]:
        """The ids of the job's finished clips, from its folder's manifest (clips of the folder
        beyond the job's -n, made by a longer job with the same settings, are not the job's)."""
        if job.kind != "generate" or not job.folder:
            return []
        folder = Path(job.folder)
        try:
            mtime = (folder / clips.MANIFEST).stat().st_mtime_ns
        except OSError:
            return []
        cached = self._manifests.get(job.folder)
        if cached is None or cached[0] != mtime:
            manifest = clips.read_manifest(folder) or {}
            entries = manifest.get("clips") if isinstance(manifest, dict) else None
            found = [(c.get("index"), c.get("id")) for c in entries or [] if isinstance(c, dict)]
            cached = (mtime, sorted((i, c) for i, c in found if isinstance(i, int) and isinstance(c, str)))
            self._manifests[job.folder] = cached
        n = job.request.get("n") or 0
        return [cid for i, cid in cached[1] if i < n]

    # ---- submitting ------------------------------------------------------------------------

    def submit_generate(self, body) -> Job:
        run, argv, request = self.check_generate(body)
        return self._submit("generate", run, argv, request, total=request["n"])

    def submit_render(self, body) -> Job:
        run, argv, request, toml_path, text = self.check_render(body)
        with self._lock:
            for j in self._jobs.values():
                if j.kind == "render" and j.state in ACTIVE and j.run == str(run) and \
                        j.request.get("name") == request["name"]:
                    raise _refuse(f"piece {request['name']!r} is being rendered already (job {j.id})", "name",
                                  status=409, job=j.id)
            write_text(toml_path, text)
            return self._submit("render", run, argv, request, total=1)

    def _submit(self, kind: str, run: Path, argv: list, request: dict, *, total: float) -> Job:
        with self._lock:
            self._refuse_copy(argv)
            now = _now()
            job = Job(id=f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}", kind=kind,
                      run=str(run), argv=argv, request=request, created=now, queued=now, total=total)
            self._jobs[job.id] = job
            save(job)
            self._pump()
            return job

    def _refuse_copy(self, argv: list, *, but: str | None = None) -> None:
        for j in self._jobs.values():
            if j.id != but and j.state in ACTIVE and j.argv == argv:
                raise _refuse(f"the same job is {j.state} already (job {j.id}); cancel it or wait for it",
                              status=409, job=j.id)

    # ---- acting on a job -------------------------------------------------------------------

    def cancel(self, job_id: str) -> Job:
        with self._lock:
            job = self.get(job_id)
            if job.state == "queued":
                job.state, job.ended = "cancelled", _now()
                save(job)
                return job
            if job.state != "running":
                raise ApiError(409, f"job {job_id} is {job.state}: only a queued or running job can be cancelled")
            proc = self._procs.get(job_id)
            self._cancelling.add(job_id)
        if proc is not None:
            _signal(proc, signal.SIGTERM)
            threading.Timer(KILL_AFTER_S, lambda: proc.poll() is None and _signal(proc, signal.SIGKILL)).start()
        return job

    def resume(self, job_id: str) -> Job:
        with self._lock:
            job = self.get(job_id)
            if job.state not in ("failed", "cancelled"):
                raise ApiError(409, f"job {job_id} is {job.state}: only a failed, cancelled or interrupted job resumes")
            self._refuse_copy(job.argv, but=job.id)
            job.state, job.queued, job.started, job.ended = "queued", _now(), None, None
            job.error, job.interrupted, job.returncode, job.eta_s = None, False, None, None
            job.resumed += 1
            save(job)
            self._pump()
            return job

    def shutdown(self, *, wait_s: float = 10.0) -> None:
        """Stop every running job (SIGTERM; finished clips are kept) and record it as interrupted,
        so the next studio offers to resume it. Called when the server stops."""
        with self._lock:
            self._closing = True
            procs = dict(self._procs)
        for proc in procs.values():
            _signal(proc, signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal(proc, signal.SIGKILL)
        with self._lock:
            for job in self._jobs.values():
                if job.state in ACTIVE:
                    self._interrupted(job)

    # ---- running ---------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start what may start: queued renders, and per run the oldest queued generate job
        when none of that run is running."""
        with self._lock:
            if self._closing:
                return
            busy = {j.run for j in self._jobs.values() if j.kind == "generate" and j.state == "running"}
            for job in sorted((j for j in self._jobs.values() if j.state == "queued"), key=lambda j: (j.queued, j.id)):
                if job.kind == "generate":
                    if job.run in busy:
                        continue
                    busy.add(job.run)
                self._start(job)

    def _start(self, job: Job) -> None:
        extra = ["--progress-json"] if job.kind == "generate" else []
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        # The same inspire as this studio's, wherever it is imported from.
        here = str(Path(inspire.__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join([here, *filter(None, [env.get("PYTHONPATH")])])
        jobs_folder(job.run).mkdir(parents=True, exist_ok=True)
        job.state, job.started, job.ended = "running", _now(), None
        job.done, job.fraction, job.eta_s = (0, 0.0, None)
        try:
            proc = subprocess.Popen(
                [self.python, "-m", "inspire", *job.argv, *extra], cwd=job.run, env=env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8", errors="replace",
                bufsize=1, start_new_session=True)  # Ctrl-C on the studio's terminal reaches the studio only
        except OSError as exc:
            job.state, job.ended, job.error = "failed", _now(), f"cannot start {self.python}: {exc.strerror or exc}"
            save(job)
            return
        self._procs[job.id] = proc
        self._tails[job.id] = deque(maxlen=TAIL_LINES)
        save(job)
        threading.Thread(target=self._watch, args=(job, proc), name=f"job-{job.id}", daemon=True).start()

    def _watch(self, job: Job, proc: subprocess.Popen) -> None:
        """Read the job's output until it ends: progress lines update the record, the rest goes
        to its log."""
        log_path = jobs_folder(job.run) / f"{job.id}.log"
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"# {_now()} {job.command}\n")
            log.flush()
            for line in proc.stdout:
                line = line.rstrip("\n")
                if line.startswith("{") and self._progress(job, line):
                    continue
                log.write(line + "\n")
                log.flush()
                with self._lock:
                    self._tails[job.id].append(line)
            returncode = proc.wait()
            log.write(f"# {_now()} exit status {returncode}\n")
        self._finish(job, returncode)

    def _progress(self, job: Job, line: str) -> bool:
        try:
            p = json.loads(line)
        except ValueError:
            return False
        if not isinstance(p, dict) or "progress" not in p:
            return False
        with self._lock:
            if isinstance(p.get("folder"), str):
                folder = Path(p["folder"])
                job.folder = str(folder if folder.is_absolute() else Path(job.run) / folder)
            clips_total = p.get("clips_total")
            if isinstance(clips_total, int):
                job.total = clips_total
            if isinstance(p.get("clips_done"), int):
                job.done = p["clips_done"]
            seconds = float(job.request.get("seconds") or 0)
            everything = (job.total or 0) * seconds
            remaining = _number(p.get("total")) - _number(p.get("done"))
            if everything > 0:
                job.fraction = round(min(1.0, max(0.0, 1.0 - remaining / everything)), 4)
            job.eta_s = p.get("eta_s") if isinstance(p.get("eta_s"), (int, float)) else None
            save(job)
        return True

    def _finish(self, job: Job, returncode: int) -> None:
        with self._lock:
            self._procs.pop(job.id, None)
            cancelled = job.id in self._cancelling
            self._cancelling.discard(job.id)
            tail = list(self._tails.get(job.id, ()))
            job.returncode = returncode
            if self._closing:
                return  # shutdown() records how it ended
            job.ended, job.eta_s = _now(), None
            if returncode == 0:
                job.state, job.error, job.fraction = "done", None, 1.0
                if job.kind == "render":
                    job.done = 1
                    job.outputs = _render_outputs(job)
                elif job.total:
                    job.done = max(job.done, len(self.clips_of(job)))
            elif cancelled:
                job.state, job.error = "cancelled", None
            else:
                job.state, job.error = "failed", _error_of(tail, returncode)
            save(job)
            self._pump()

    # ---- checking forms --------------------------------------------------------------------

    def run_of(self, value, field_name: str = "run") -> Path:
        """An opened run by key (r0...), path or folder name; None when exactly one is open."""
        opened = self.roots.runs
        if value is None:
            if len(opened) == 1:
                return opened[0].path
            if not opened:
                raise _refuse("no run folder is open: open one (inspire studio RUN_DIR)", field_name)
            names = ", ".join(f"{r.key} ({r.path.name})" for r in opened)
            raise _refuse(f"several runs are open ({names}): say which", field_name)
        if not isinstance(value, str) or not value:
            raise _refuse(f"{field_name}: expected a run key like r0 (GET /api/runs), got {value!r}", field_name)
        hits = [r for r in opened if value in (r.key, str(r.path), r.path.name)]
        if not hits:
            try:
                hits = [r for r in opened if r.path == Path(value).expanduser().resolve()]
            except (OSError, RuntimeError):
                hits = []
        if len(hits) != 1:
            why = "several opened runs have that name" if hits else "no such opened run"
            raise _refuse(f"{field_name} {value!r}: {why} (GET /api/runs lists them)", field_name)
        return hits[0].path

    def check_generate(self, body) -> tuple[Path, list, dict]:
        """(run, argv, request) for a generate form, or ApiError(400) naming the field."""
        if not isinstance(body, dict):
            raise _refuse('expected a JSON object {"run", "n", "seconds", "temperature": [...], ...}')
        _known(body, GENERATE_KEYS)
        run = self.run_of(body.get("run"))
        argv = ["generate", str(run)]
        request: dict = {"run": str(run)}

        n = body.get("n", GENERATE.clips)
        if not _is_int(n):
            raise _refuse(f"n: expected a whole number of clips, got {n!r}", "n")
        seconds = body.get("seconds", GENERATE.seconds)
        if not _is_number(seconds):
            raise _refuse(f"seconds: expected a number of seconds, got {seconds!r}", "seconds")
        _cli_check(lambda: checks.check_job(n=n, seconds=1.0, batch_size=None), "n")
        _cli_check(lambda: checks.check_job(n=1, seconds=float(seconds), batch_size=None), "seconds")
        rate = _sample_rate(run)
        if rate:
            _cli_check(lambda: checks.check_length(float(seconds), rate), "seconds")
            _cli_check(lambda: checks.check_disk(run / "clips", n=n, seconds=float(seconds), sample_rate=rate), "n")
        argv += ["-n", str(n), "--seconds", _num(seconds)]
        request.update(n=n, seconds=float(seconds))

        parsed = _curves(body.get("temperature", list(GENERATE.temperatures)), "temperature", "temperature")
        for spec in parsed:
            argv += ["--temperature", spec]
        request["temperature"] = parsed
        for key, control in TRUNCATION:  # --min-p, --top-p: sweeps in the same grammar
            defaults = list(getattr(GENERATE, key + "s"))
            given = body.get(key)
            parsed = defaults if given is None else _curves(given, key, control)
            for spec in [] if given is None else parsed:
                argv += [f"--{control}", spec]
            request[key] = parsed

        which = body.get("checkpoint")
        if which is None:
            chosen = runs.choice(run)
            which = str(int(chosen.removeprefix("step-"))) if chosen else GENERATE.checkpoint
        elif _is_int(which) and which >= 0:
            which = str(which)
        elif isinstance(which, str) and (m := re.fullmatch(r"\s*(?:step-)?(\d+)\s*", which)):
            which = str(int(m.group(1)))
        elif which not in ("best", "last"):
            raise _refuse(f"checkpoint: expected best, last or a step number (the runs view lists them), got {which!r}",
                          "checkpoint")
        ckpt = _cli_check(lambda: checks.resolve(run, which), "checkpoint")
        if which != GENERATE.checkpoint:
            argv += ["--checkpoint", which]
        request["checkpoint"] = which
        argv += self._steer_argv(run, ckpt, body, request)

        seed = body.get("seed")
        if seed is not None:
            if not _is_int(seed):
                raise _refuse(f"seed: expected a whole number, got {seed!r}", "seed")
            argv += [f"--seed={seed}"] if seed < 0 else ["--seed", str(seed)]  # -5 would read as a flag
        request["seed"] = GENERATE.seed if seed is None else seed

        prime = body.get("prime")
        request["prime"] = None
        if prime is not None:
            argv += self._prime_argv(run, prime, request)
        return run, argv, request

    @staticmethod
    def _steer_argv(run: Path, ckpt: Path, body: dict, request: dict) -> list[str]:
        """--guard, --steer (each spec checked against the run's labels) and --guidance, with
        `inspire generate`'s own checks and messages."""
        guard = body.get("guard", GENERATE.guard)
        if not isinstance(guard, bool):
            raise _refuse(f"guard: expected true or false, got {guard!r}", "guard")
        specs = body.get("steer")
        if isinstance(specs, str):
            specs = [specs]
        if specs is not None and (not isinstance(specs, list) or not all(isinstance(x, str) for x in specs)):
            raise _refuse(f'steer: expected a list of steering specs like ["nebula:through-space"], got {specs!r}',
                          "steer")
        guidance = body.get("guidance")
        if guidance is not None and not _is_number(guidance):
            raise _refuse(f"guidance: expected a number, got {guidance!r}", "guidance")
        guidance = None if guidance is None else float(guidance)
        steered = specs is not None
        _cli_check(lambda: checks.check_guidance(guidance, steered=steered), "guidance")
        argv: list[str] = []
        if guard != GENERATE.guard:
            argv.append("--guard" if guard else "--no-guard")
        request["guard"] = guard
        request["steer"], request["guidance"] = None, guidance
        if not steered:
            return argv
        if not specs:
            _cli_check(lambda: curves.parse_steers(specs), "steer")  # "give at least one"
        steers = [_cli_check(lambda x=spec: curves.parse_steer(x), "steer", index=i) for i, spec in enumerate(specs)]
        names = checks.run_labels(run)
        if names is not None:  # unknown without RUN/config.json: generate checks them when it loads the model
            _cli_check(lambda: checks.check_steer_labels(names, ckpt), "steer")
            for i, steer in enumerate(steers):
                _cli_check(lambda x=steer: x.bind(names), "steer", index=i)
        _cli_check(lambda: checks.check_guard(guard, steered=True), "guard")
        request["steer"] = [x.spec for x in steers]
        for spec in request["steer"]:
            argv += ["--steer", spec]
        if guidance is not None:
            argv += ["--guidance", _num(guidance)]
        return argv

    @staticmethod
    def _prime_argv(run: Path, prime, request: dict) -> list[str]:
        if prime == checks.CORPUS:
            request["prime"] = checks.CORPUS
            return ["--prime", checks.CORPUS]
        if not isinstance(prime, dict) or not isinstance(prime.get("track"), str):
            raise _refuse('prime: expected "corpus" or {"track": NAME, "start_s": S, "seconds": N}, '
                          f"got {prime!r}", "prime")
        _known(prime, ("track", "start_s", "seconds"), where="prime")
        start, seconds = prime.get("start_s"), prime.get("seconds", GENERATE.prime_seconds)
        for key, value in (("start_s", start), ("seconds", seconds)):
            if value is not None and not _is_number(value):
                raise _refuse(f"prime.{key}: expected a number of seconds, got {value!r}", "prime")
        spec = f"{checks.CORPUS}:{prime['track']}"
        got = _cli_check(lambda: checks.prime_request(spec, float(seconds),
                                                      None if start is None else float(start), run_dir=run), "prime")
        request["prime"] = {"track": prime["track"], "start_s": got["start_s"], "seconds": got["seconds"]}
        return ["--prime", spec, "--prime-start", _num(got["start_s"]), "--prime-seconds", _num(float(seconds))]

    def check_render(self, body) -> tuple[Path, list, dict, Path, str]:
        """(run, argv, request, the .toml to write, its text) for a render form, or ApiError:
        400 naming the field, 409 when the piece exists and overwrite is not true."""
        if not isinstance(body, dict):
            raise _refuse('expected a JSON object {"arrangement": TOML, "name": NAME, "run": RUN, ...}')
        _known(body, RENDER_KEYS)
        run = self.run_of(body.get("run"))
        name = body.get("name")
        if not isinstance(name, str) or not _NAME.match(name) or name.endswith(".toml"):
            raise _refuse("name: a piece name of letters, digits, spaces and _ . - (at most 100, no folders), "
                          f"got {name!r}", "name")
        for key in ("overwrite", "stems"):
            if not isinstance(body.get(key, False), bool):
                raise _refuse(f"{key}: expected true or false, got {body[key]!r}", key)
        overwrite, stems = body.get("overwrite", False), body.get("stems", False)
        rate, depth = body.get("sample_rate", RENDER_SAMPLE_RATE), body.get("bit_depth", RENDER_BIT_DEPTH)
        folder = run / PIECES
        wav, toml_path, stems_dir = folder / f"{name}.wav", folder / f"{name}.toml", folder / f"{name}-stems"
        _cli_check(lambda: check_delivery(wav, sample_rate=rate, bit_depth=None), "sample_rate")
        _cli_check(lambda: check_delivery(wav, sample_rate=None, bit_depth=depth), "bit_depth")
        text = body.get("arrangement")
        if not isinstance(text, str) or not text.strip():
            raise _refuse("arrangement: expected the piece's TOML text (format_version, [[part]] tables)",
                          "arrangement")
        arr = _arrangement_check(lambda: arrangement_format.parse_text(text, base_dir=str(folder),
                                                                        source=toml_path.name))
        _arrangement_check(lambda: master.check(arr))
        if not overwrite:
            taken = [p for p in (wav, wav.with_suffix(".json"), wav.with_suffix(".labels.txt")) if p.exists()]
            if stems_dir.is_dir() and any(stems_dir.iterdir()):
                taken.append(stems_dir)
            if toml_path.exists() and _read_text(toml_path) != text:
                taken.append(toml_path)
            if taken:
                raise _refuse(f"{taken[0]} already exists: render with overwrite to replace the piece "
                              "(or choose another name)", "name", status=409, exists=True)
        argv = ["compose", str(toml_path), "--out", str(wav), "--sample-rate", str(rate), "--bit-depth", str(depth)]
        argv += ["--stems", str(stems_dir)] if stems else []
        argv += ["--force"] if overwrite else []
        request = {"run": str(run), "name": name, "overwrite": overwrite, "stems": stems, "sample_rate": rate,
                   "bit_depth": depth}
        return run, argv, request, toml_path, text


def _curves(specs, field_name: str, control: str) -> list[str]:
    """A form's list of curve specs for `control` (a sweep; one string is one curve), each parsed
    by the command line's parser: their texts, or a 400 naming the field (and the n-th curve)."""
    if isinstance(specs, str):
        specs = [specs]
    if not isinstance(specs, list) or not all(isinstance(s, str) for s in specs):
        example = curves.CONTROLS[control].example.split(" or ")[-1]
        raise _refuse(f"{field_name}: expected a list of curves like [\"{example}\"], got {specs!r}", field_name)
    if not specs:
        _cli_check(lambda: curves.parse_many(specs, control=control), field_name)  # "give at least one"
    return [_cli_check(lambda s=spec: curves.parse(s, control=control), field_name, index=i).spec
            for i, spec in enumerate(specs)]


def _known(body: dict, keys: tuple, *, where: str | None = None) -> None:
    unknown = sorted(set(body) - set(keys))
    if unknown:
        name = f"{where}.{unknown[0]}" if where else unknown[0]
        raise _refuse(f"{name}: unknown field (expected {', '.join(keys)})", where or unknown[0])


def _cli_check(check, field_name: str, **extra):
    """Run one of the command line's checks; its InspireError becomes a 400 naming the field."""
    try:
        return check()
    except InspireError as exc:
        raise _refuse(str(exc), field_name, **extra) from None


def _arrangement_check(check):
    """Like _cli_check for the arrangement, with the part (1-based) and key its message names."""
    try:
        return check()
    except InspireError as exc:
        m = _PART_KEY.search(str(exc))
        extra = {"part": int(m.group(1)), "key": m.group(2)} if m else {}
        raise _refuse(str(exc), "arrangement", **extra) from None


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(v) -> float:
    return float(v) if _is_number(v) and math.isfinite(v) else 0.0


def _num(x) -> str:
    """A number as the command line takes it, exactly: 30, 2.5, 0.1."""
    x = float(x)
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


def _sample_rate(run: Path) -> int | None:
    """The run's sample rate from its prepared data, when it has some."""
    try:
        return int(load_prepared(run).settings.sample_rate)
    except (InspireError, OSError, ValueError):
        return None


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        proc.send_signal(sig)
    except (OSError, ProcessLookupError):
        pass  # already gone


def _error_of(tail: list[str], returncode: int) -> str:
    """The one-line error a failed command printed, or what is known of its end."""
    for line in reversed(tail):
        m = _ERROR_LINE.match(line.strip())
        if m:
            return m.group(1)
    if any(re.match(r"^inspire \w+: interrupted$", line.strip()) for line in tail[-3:]):
        return "interrupted (stopped by a signal); resume it to go on"
    if returncode < 0:
        try:
            return f"stopped by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"stopped by signal {-returncode}"
    last = next((line.strip() for line in reversed(tail) if line.strip()), "")
    return last or f"exited with status {returncode}"


def _render_outputs(job: Job) -> dict:
    """The files a finished render wrote, relative to the run: piece, arrangement, json, labels,
    stems; with the piece's seconds and loudness from its .json."""
    run = Path(job.run)
    wav = run / PIECES / f"{job.request.get('name')}.wav"
    rel = lambda p: p.relative_to(run).as_posix()  # noqa: E731
    out = {"piece": rel(wav), "arrangement": rel(wav.with_suffix(".toml")), "json": rel(wav.with_suffix(".json")),
           "labels": rel(wav.with_suffix(".labels.txt")), "stems": [], "seconds": None, "loudness": None}
    try:
        piece = read_json(wav.with_suffix(".json"))
        out["seconds"], out["loudness"] = piece.get("seconds"), piece.get("loudness")
        out["stems"] = [rel(wav.parent / p["stem"]) for p in piece.get("parts") or [] if p.get("stem")]
    except (OSError, ValueError, AttributeError, TypeError):
        pass
    return out


# ---- HTTP ----------------------------------------------------------------------------------


def _jobs(request: Request) -> Jobs:
    return request.app.state.jobs


def view(request: Request, job: Job) -> dict:
    """A job as the API shows it: the record with URLs, the run's key and the clips so far."""
    jobs, studio = _jobs(request), request.app.state.studio
    run_key = next((r.key for r in studio.roots.runs if str(r.path) == job.run), None)
    folder = None
    if job.folder:
        path = Path(job.folder)
        known = next((f for f in studio.roots.clips_folders if f.path == path), None)
        if known is None and path.is_dir():
            known = next((f for f in studio.roots.refresh() if f.path == path), None)
        folder = {"path": job.folder, "key": known.key if known else None, "name": known.name if known else path.name}
    outputs = None
    if job.outputs:
        url = lambda rel: studio.roots.url_of(Path(job.run) / rel)  # noqa: E731
        outputs = {k: url(v) for k, v in job.outputs.items() if k in ("piece", "arrangement", "json", "labels")}
        outputs["stems"] = [url(s) for s in job.outputs.get("stems") or []]
        outputs.update(seconds=job.outputs.get("seconds"), loudness=job.outputs.get("loudness"))
    log = jobs_folder(job.run) / f"{job.id}.log"
    return {
        "id": job.id, "kind": job.kind, "state": job.state, "run": run_key, "run_path": job.run,
        "created": job.created, "started": job.started, "ended": job.ended,
        "command": job.command, "argv": job.argv, "request": job.request,
        "done": job.done, "total": job.total, "fraction": job.fraction, "eta_s": job.eta_s,
        "clips": jobs.clips_of(job), "folder": folder,
        "error": job.error, "interrupted": job.interrupted, "resumed": job.resumed,
        "cancelling": job.id in jobs._cancelling,
        "log_url": studio.roots.url_of(log) if log.is_file() else None, "tail": jobs.tail(job.id)[-5:],
        "outputs": outputs,
    }


async def api_generate(request: Request) -> Response:
    body = await _json_body(request)
    job = await run_in_threadpool(_jobs(request).submit_generate, body)
    return JSONResponse({"id": job.id, "job": view(request, job)}, status_code=202)


async def api_render(request: Request) -> Response:
    body = await _json_body(request)
    job = await run_in_threadpool(_jobs(request).submit_render, body)
    return JSONResponse({"id": job.id, "job": view(request, job)}, status_code=202)


async def api_jobs(request: Request) -> Response:
    jobs = _jobs(request)
    key = request.query_params.get("run")
    run = None if key is None else str(request.app.state.studio.run(key))
    listed = await run_in_threadpool(lambda: [view(request, j) for j in jobs.list(run=run)])
    return JSONResponse({"jobs": listed}, headers={"Cache-Control": "no-store"})


async def api_job(request: Request) -> Response:
    job = _jobs(request).get(request.path_params["id"])
    return JSONResponse(await run_in_threadpool(view, request, job), headers={"Cache-Control": "no-store"})


async def api_cancel(request: Request) -> Response:
    job = await run_in_threadpool(_jobs(request).cancel, request.path_params["id"])
    return JSONResponse(view(request, job))


async def api_resume(request: Request) -> Response:
    job = await run_in_threadpool(_jobs(request).resume, request.path_params["id"])
    return JSONResponse(view(request, job))


async def api_schedule(request: Request) -> Response:
    """{"spec": TEXT, "seconds": S?, "control": "temperature"|"min-p"|"top-p"?} -> the parsed curve
    (breakpoints in seconds when S is given), or 400 with `inspire generate`'s own message."""
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("spec"), str):
        raise _refuse('expected {"spec": "0.875:1.15", "seconds": 30, "control": "temperature"}', "spec")
    _known(body, ("spec", "seconds", "control"))
    control = body.get("control", "temperature")
    if control not in curves.CONTROLS:
        raise _refuse(f"control: expected one of {', '.join(curves.CONTROLS)}, got {control!r}", "control")
    seconds = _seconds_of(body)
    s = _cli_check(lambda: curves.parse(body["spec"], control=control), "spec")
    out = {"spec": s.spec, "control": control, "unit": s.unit, "positions": list(s.positions), "values": list(s.values)}
    if seconds is not None:
        rate = 1000  # the resolved curve's breakpoints do not depend on the rate
        out["resolved"] = s.resolved(max(2, round(seconds * rate) + 1), rate)
    return JSONResponse(out)


def steer_curve(run: Path, spec: str, seconds: float | None) -> dict:
    """A steering spec checked against the run's labels (as `inspire generate --steer` checks it)
    and resolved for drawing: the breakpoints, and each label's mixing weight at the clip's ends
    and every breakpoint in between (linear between them: exactly the weights generate uses at
    every sample; a curve in seconds reaching past the clip's end is drawn to its last point)."""
    import numpy as np

    names = checks.run_labels(run)
    st = _cli_check(lambda: curves.parse_steer(spec), "spec")
    if names is None:
        raise _refuse(f"{run}: no readable config.json, so its model's labels are unknown (inspire train writes it)",
                      "run")
    _cli_check(lambda: checks.check_steer_labels(names, run), "spec")
    st = _cli_check(lambda: st.bind(names), "spec")
    rows = st.rows(names)
    clip = float(seconds) if seconds is not None else 1.0
    inner = [p * clip if st.unit == "fraction" else p for p in st.positions]
    times = sorted({0.0, clip, *(t for t in inner if t > 0.0)})
    w = st.weights(np.asarray(times), clip, rows, len(names) + 1)
    row_names = [curves.STEER_NONE, *names]
    series = [{"label": row_names[r], "row": r, "weights": [round(float(v), 6) for v in w[:, r]]}
              for r in sorted(set(rows), key=rows.index)]
    return {"spec": st.spec, "unit": st.unit, "positions": list(st.positions), "labels_at": list(st.labels),
            "labels": names, "seconds": clip if seconds is not None else None,
            "times_s": [round(t, 6) for t in times], "series": series}


async def api_steer(request: Request) -> Response:
    """{"run": RUN?, "spec": TEXT, "seconds": S?} -> the run's labels and the steering curve for
    drawing (steer_curve), or 400 with `inspire generate --steer`'s own message."""
    body = await _json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("spec"), str):
        raise _refuse('expected {"run": "r0", "spec": "nebula:through-space", "seconds": 30}', "spec")
    _known(body, ("run", "spec", "seconds"))
    run = _jobs(request).run_of(body.get("run"))
    seconds = _seconds_of(body)
    return JSONResponse(await run_in_threadpool(steer_curve, run, body["spec"], seconds))


def _seconds_of(body: dict) -> float | None:
    seconds = body.get("seconds")
    if seconds is not None and not (_is_number(seconds) and seconds > 0 and math.isfinite(seconds)):
        raise _refuse(f"seconds: expected a length > 0, got {seconds!r}", "seconds")
    return seconds


ROUTES = [
    Route("/api/schedule", api_schedule, methods=["POST"]),
    Route("/api/steer", api_steer, methods=["POST"]),
    Route("/api/generate", api_generate, methods=["POST"]),
    Route("/api/render", api_render, methods=["POST"]),
    Route("/api/jobs", api_jobs),
    Route("/api/jobs/{id}", api_job),
    Route("/api/jobs/{id}/cancel", api_cancel, methods=["POST"]),
    Route("/api/jobs/{id}/resume", api_resume, methods=["POST"]),
]
