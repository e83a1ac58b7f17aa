"""The studio's jobs in-process (Starlette's TestClient) with a tiny model: generate runs the command
line's own job to completion, lists, cancels (finished clips kept), resumes after a restart, refuses
bad forms with the command line's messages before starting anything; render writes the piece at
48 kHz 24-bit, refuses to overwrite, and its piece.toml renders identically with `inspire compose`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("starlette")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from conftest import save_checkpoint  # noqa: E402
from inspire import clips  # noqa: E402
from inspire.cli import main  # noqa: E402
from inspire.studio import jobs as jobs_mod  # noqa: E402
from inspire.studio.server import create_app  # noqa: E402
from studio_data import make_clips, make_run  # noqa: E402

TOKEN = "jobs-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SRC = str(Path(__file__).resolve().parents[1] / "src")
WAIT_S = 180  # generous: the machine may be busy; nothing here measures speed
FINAL = ("done", "failed", "cancelled")


def _tiny_run(root: Path) -> Path:
    """A run folder with prepared data (two 4-s tracks), a stand-in step-100 checkpoint (bytes,
    not loadable) and a random-init tiny model as best.pt (256 levels like the data)."""
    import torch

    from inspire.config import ModelConfig
    from inspire.samplernn.model import SampleRNN

    run = make_run(root, tracks=2, track_seconds=4.0, steps=(100,), temperatures=(1.0,))
    torch.manual_seed(0)
    save_checkpoint(run, SampleRNN(ModelConfig(frame_sizes=(4, 2), dim=16, levels=256)).eval(), step=100)
    return run


@pytest.fixture
def run(tmp_path):
    return _tiny_run(tmp_path / "run")


class _Studio:
    """An app over `paths` with its TestClient; close() stops its jobs as the server does."""

    def __init__(self, paths):
        self.app = create_app(paths, token=TOKEN, cache_folder=None)
        self.client = TestClient(self.app, base_url="http://127.0.0.1:8737")

    def close(self):
        self.app.state.jobs.shutdown()
        self.client.close()


@pytest.fixture
def studio(run):
    s = _Studio([run])
    yield s
    s.close()


def _post(client, url, body=None):
    return client.post(url, json=body, headers=AUTH)


def _job(client, jid):
    r = client.get(f"/api/jobs/{jid}")
    assert r.status_code == 200, r.text
    return r.json()


def _wait(client, jid, states=FINAL):
    deadline = time.monotonic() + WAIT_S
    while True:
        job = _job(client, jid)
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, f"job never reached {states}: {job}"
        time.sleep(0.05)


def _wait_for(condition, what):
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def _start(client, body) -> str:
    r = _post(client, "/api/generate", body)
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _cli(argv, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


# ---- generate ------------------------------------------------------------------------------


def test_generate_runs_the_command_lines_job_to_completion(studio, run, capsys):
    body = {"n": 3, "seconds": 0.5, "temperature": ["0.9", "0.875:1.15"], "seed": 3}
    jid = _start(studio.client, body)
    job = _wait(studio.client, jid)
    assert job["state"] == "done", job
    assert (job["done"], job["total"], job["fraction"], job["error"]) == (3, 3, 1.0, None)
    assert job["command"] == (f"inspire generate {run} -n 3 --seconds 0.5 --temperature 0.9 "
                              "--temperature 0.875:1.15 --seed 3")
    folder = Path(job["folder"]["path"])
    assert folder.parent == run / "clips"
    records = clips.scan(folder)
    assert job["clips"] == [r.id for r in records] and len(records) == 3
    assert [r.temperature["spec"] for r in records] == ["0.9", "0.875:1.15", "0.9"]  # a sweep, in turn
    # The clips view lists them, in a folder it knows.
    assert job["folder"]["key"] in {f["key"] for f in studio.client.get("/api/folders").json()["folders"]}
    listed = {c["id"] for c in studio.client.get(f"/api/clips?folder={job['folder']['key']}").json()["clips"]}
    assert listed == set(job["clips"])
    # The same command on the command line finds the same clips finished: same ids, same folder.
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.wav")}
    code, out, err = _cli(job["argv"], capsys)
    assert code == 0 and out.strip() == str(folder) and "(3 already there)" in err
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.wav")} == stamps
    # The record is on disk; its log holds what generate printed.
    record = json.loads((run / "studio" / "jobs" / f"{jid}.json").read_text())
    assert record["state"] == "done" and record["format_version"] == 1
    assert "3 clip(s) in" in studio.client.get(job["log_url"]).text


def test_jobs_are_listed_and_a_restarted_studio_lists_them_too(studio, run):
    jid = _start(studio.client, {"n": 1, "seconds": 0.25, "temperature": ["1.0"]})
    assert _wait(studio.client, jid)["state"] == "done"
    listed = studio.client.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == [jid]
    again = _Studio([run])
    try:
        job = _job(again.client, jid)
        assert job["state"] == "done" and len(job["clips"]) == 1 and job["run"] == "r0"
        assert [j["id"] for j in again.client.get("/api/jobs?run=r0").json()["jobs"]] == [jid]
    finally:
        again.close()


def test_cancel_keeps_finished_clips_and_resume_finishes_the_job(studio, run, capsys):
    seconds = 60.0  # long enough to catch a clip half made; the tiny model makes it in a second or two
    first = _wait(studio.client, _start(studio.client, {"n": 1, "seconds": seconds, "seed": 5}))
    assert first["state"] == "done"
    folder = Path(first["folder"]["path"])
    kept = folder / f"{first['clips'][0]}.wav"
    stamp = kept.stat().st_mtime_ns

    jid = _start(studio.client, {"n": 3, "seconds": seconds, "seed": 5})  # the same folder: resumes it
    _wait_for(lambda: any(folder.glob(".*.partial.wav")), "a clip being generated")
    r = _post(studio.client, f"/api/jobs/{jid}/cancel")
    assert r.status_code == 200, r.text
    job = _wait(studio.client, jid)
    assert job["state"] == "cancelled" and job["error"] is None
    assert not list(folder.glob(".*.partial.wav"))  # SIGTERM: the unfinished clips are dropped
    assert kept.stat().st_mtime_ns == stamp and job["clips"] == first["clips"]
    assert _post(studio.client, f"/api/jobs/{jid}/cancel").status_code == 409  # nothing to cancel

    r = _post(studio.client, f"/api/jobs/{jid}/resume")
    assert r.status_code == 200 and r.json()["state"] in ("queued", "running")
    job = _wait(studio.client, jid)
    assert job["state"] == "done" and len(job["clips"]) == 3 and job["resumed"] == 1
    assert kept.stat().st_mtime_ns == stamp  # not made again
    code, _, err = _cli(job["argv"], capsys)  # the command line agrees: all three are there
    assert code == 0 and "(3 already there)" in err


def test_a_job_interrupted_by_a_restart_resumes_from_the_new_studio(run):
    first = _Studio([run])
    try:
        jid = _start(first.client, {"n": 2, "seconds": 60.0, "seed": 9})
        _wait_for(lambda: _job(first.client, jid)["folder"] is not None, "the job's folder")
        folder = Path(_job(first.client, jid)["folder"]["path"])
        _wait_for(lambda: any(folder.glob(".*.partial.wav")), "a clip being generated")
    finally:
        first.close()  # the server stops: its job is stopped and recorded as interrupted
    second = _Studio([run])
    try:
        job = _job(second.client, jid)
        assert job["state"] == "failed" and job["interrupted"] and "resume" in job["error"]
        assert not list(folder.glob(".*.partial.wav"))
        assert _post(second.client, f"/api/jobs/{jid}/resume").status_code == 200
        job = _wait(second.client, jid)
        assert job["state"] == "done" and len(job["clips"]) == 2 and not job["interrupted"]
    finally:
        second.close()


def test_a_record_left_running_by_a_crash_shows_as_interrupted(run):
    record = jobs_mod.Job(id="20260101-000000-abcdef", kind="generate", run=str(run),
                          argv=["generate", str(run), "-n", "1"], request={"n": 1, "seconds": 1.0},
                          state="running", created="2026-01-01T00:00:00+00:00", started="2026-01-01T00:00:01+00:00")
    jobs_mod.save(record)
    data = json.loads((run / "studio" / "jobs" / f"{record.id}.json").read_text())
    data["from_a_newer_version"] = {"kept": True}
    (run / "studio" / "jobs" / f"{record.id}.json").write_text(json.dumps(data))
    s = _Studio([run])
    try:
        job = _job(s.client, record.id)
        assert job["state"] == "failed" and job["interrupted"] and "was running" in job["error"]
        saved = json.loads((run / "studio" / "jobs" / f"{record.id}.json").read_text())
        assert saved["from_a_newer_version"] == {"kept": True} and saved["state"] == "failed"
    finally:
        s.close()


def test_one_generate_per_run_at_a_time_and_a_copy_is_refused(studio):
    long = {"n": 1, "seconds": 600.0, "seed": 1}
    a = _start(studio.client, long)
    copy = _post(studio.client, "/api/generate", long)
    assert copy.status_code == 409 and a in copy.json()["error"] and copy.json()["job"] == a
    b = _start(studio.client, {"n": 1, "seconds": 0.25, "seed": 2})
    assert _job(studio.client, b)["state"] == "queued"  # waits for a
    assert _post(studio.client, f"/api/jobs/{a}/cancel").status_code == 200
    assert _wait(studio.client, a)["state"] == "cancelled"
    assert _wait(studio.client, b)["state"] == "done"
    queued = _start(studio.client, long)
    assert _post(studio.client, f"/api/jobs/{queued}/cancel").status_code == 200
    assert _wait(studio.client, queued)["state"] == "cancelled"


def test_a_failing_job_carries_the_command_lines_one_line_error(studio, run, capsys):
    # step-100 is a stand-in file, not a checkpoint: generate starts and fails loading it.
    jid = _start(studio.client, {"n": 1, "seconds": 0.25, "checkpoint": 100})
    job = _wait(studio.client, jid)
    code, _, err = _cli(job["argv"], capsys)
    assert code == 2 and job["state"] == "failed"
    assert err.strip().splitlines()[-1] == f"inspire generate: error: {job['error']}"
    assert "\n" not in job["error"] and job["error"]


def test_the_checkpoint_chosen_in_the_runs_view_is_the_default(studio, run):
    assert studio.client.put("/api/runs/r0/checkpoint", json={"checkpoint": "step-00000100"},
                             headers=AUTH).status_code == 200
    r = _post(studio.client, "/api/generate", {"n": 1, "seconds": 0.25})
    job = _wait(studio.client, r.json()["id"])
    assert "--checkpoint 100" in job["command"] and job["request"]["checkpoint"] == "100"


# ---- refusing bad forms before anything starts ---------------------------------------------


@pytest.mark.parametrize("body, field, words", [
    ({"temperature": ["0"]}, "temperature", "temperature must be a number > 0"),
    ({"temperature": ["0.9", "0s:1.0,5s:1.1,2s:0.9"]}, "temperature", "must increase from left to right"),
    ({"temperature": []}, "temperature", "give at least one"),
    ({"temperature": "1:2:3"}, "temperature", "a ramp is START:END"),
    ({"n": 0}, "n", "-n must be at least 1, got 0"),
    ({"n": True}, "n", "expected a whole number"),
    ({"n": 10 ** 12, "seconds": 30}, "n", "GB free"),
    ({"seconds": -1}, "seconds", "--seconds must be > 0"),
    ({"seconds": 1e9}, "seconds", "too long for a WAV file"),
    ({"seconds": "long"}, "seconds", "expected a number"),
    ({"run": "r9"}, "run", "no such opened run"),
    ({"checkpoint": 123}, "checkpoint", "no checkpoint at step 123 (kept steps: 100)"),
    ({"checkpoint": "../../etc/passwd"}, "checkpoint", "expected best, last or a step number"),
    ({"seed": 1.5}, "seed", "expected a whole number"),
    ({"prime": {"track": "nope"}}, "prime", "no prepared track 'nope' (tracks: track0, track1)"),
    ({"prime": {"track": "track0", "start_s": 99}}, "prime", "beyond the end of track track0"),
    ({"prime": {"track": "track0", "seconds": 0}}, "prime", "--prime-seconds must be > 0"),
    ({"prime": "somewhere.wav"}, "prime", 'expected "corpus"'),
    ({"bogus": 1}, "bogus", "unknown field"),
])
def test_bad_generate_forms_are_refused_naming_the_field(studio, body, field, words):
    r = _post(studio.client, "/api/generate", {"n": 1, "seconds": 1, **body})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and words in r.json()["error"], r.json()
    assert studio.client.get("/api/jobs").json()["jobs"] == []  # nothing started


@pytest.mark.parametrize("flags, body", [
    (["-t", "0"], {"temperature": ["0"]}),
    (["-t", "0.9", "-t", "0:1.0,0.5:1.1,0.4:0.9"], {"temperature": ["0.9", "0:1.0,0.5:1.1,0.4:0.9"]}),
    (["-n", "0"], {"n": 0}),
    (["--checkpoint", "42"], {"checkpoint": 42}),
])
def test_the_studios_messages_are_the_command_lines(studio, run, capsys, flags, body):
    code, _, err = _cli(["generate", str(run), "--seconds", "1", *flags], capsys)
    r = _post(studio.client, "/api/generate", {"seconds": 1, **body})
    assert code == 2 and r.status_code == 400
    assert err.strip() == f"inspire generate: error: {r.json()['error']}"
    if "index" in r.json():
        assert r.json()["index"] == len(body["temperature"]) - 1


def test_state_changes_need_the_token(studio):
    for url in ("/api/generate", "/api/render", "/api/schedule", "/api/jobs/x/cancel", "/api/jobs/x/resume"):
        assert studio.client.post(url, json={}).status_code == 401, url
    assert _post(studio.client, "/api/jobs/nope/cancel").status_code == 404


def test_schedule_is_checked_with_generates_parser(studio):
    r = _post(studio.client, "/api/schedule", {"spec": "0s:0.9, 20s:1.1", "seconds": 30})
    assert r.status_code == 200, r.text
    assert r.json()["unit"] == "seconds" and r.json()["positions"] == [0.0, 20.0] and r.json()["values"] == [0.9, 1.1]
    assert r.json()["resolved"]["times_s"] == [0.0, 20.0, 30.0]
    ramp = _post(studio.client, "/api/schedule", {"spec": "0.875:1.15", "seconds": 45}).json()
    assert ramp["resolved"] == {"spec": "0.875:1.15", "times_s": [0.0, 45.0], "values": [0.875, 1.15]}
    bad = _post(studio.client, "/api/schedule", {"spec": "0s:1.0,20s:1.1,10s:0.9"})
    assert bad.status_code == 400 and bad.json()["field"] == "spec"
    assert bad.json()["error"] == ("temperature '0s:1.0,20s:1.1,10s:0.9': breakpoint positions must increase "
                                   "from left to right")


# ---- priming from a moment of the corpus ---------------------------------------------------


def test_corpus_tracks_draw_and_play_and_prime_a_job(studio, run, capsys):
    tracks = studio.client.get("/api/runs/r0/tracks").json()
    assert [t["name"] for t in tracks["tracks"]] == ["track0", "track1"] and tracks["sample_rate"] == 16000
    t0 = tracks["tracks"][0]
    wave = studio.client.get(t0["waveform_url"]).json()
    assert abs(wave["duration"] - 4.0) < 1e-3 and wave["peaks"]["count"] > 0
    excerpt = studio.client.get(t0["excerpt_url"] + "?start=1&seconds=0.5")
    x, sr = sf.read(__import__("io").BytesIO(excerpt.content))
    assert sr == 16000 and len(x) == 8000
    assert studio.client.get(t0["excerpt_url"] + "?start=1&seconds=99").status_code == 400

    jid = _start(studio.client, {"n": 2, "seconds": 0.25, "prime": {"track": "track0", "start_s": 1.0, "seconds": 0.5}})
    job = _wait(studio.client, jid)
    assert job["state"] == "done", job
    assert "--prime corpus:track0 --prime-start 1 --prime-seconds 0.5" in job["command"]
    records = clips.scan(Path(job["folder"]["path"]))
    for r in records:
        assert r.prime == {"source": "corpus", "track": t0["id"], "start_s": 1.0, "seconds": 0.5, "included": False}
    # --again makes a clip primed this way exactly again.
    code, out, _ = _cli(["generate", str(run), "--again", records[1].id, "--quiet"], capsys)
    again = Path(out.strip()) / f"{records[1].id}.wav"
    assert code == 0 and np.array_equal(sf.read(again)[0], sf.read(Path(job["folder"]["path"]) / records[1].file)[0])


# ---- render --------------------------------------------------------------------------------

ARRANGEMENT = """\
format_version = 1
clips_dir = "../clips/job"
noise_reduction = "off"

[[part]]
clip = "{a}"
in_s = 0.25
out_s = 2.0
crossfade_s = 0.5

[[part]]
clip = "{b}"
in_s = 0.0
out_s = 2.5
gain_db = -3.0
crossfade_s = 0.25

[[part]]
clip = "{c}"
in_s = 1.0
"""


@pytest.fixture
def pieces(tmp_path):
    """A run (no model needed) with a folder of clips, and a three-part arrangement of them."""
    run = make_run(tmp_path / "run", tracks=1, track_seconds=3.0, steps=(100,), temperatures=(1.0,))
    ids = make_clips(run / "clips" / "job", 3, run=run, seconds=3.0)
    s = _Studio([run])
    yield s, run, ARRANGEMENT.format(a=ids[0], b=ids[1], c=ids[2])
    s.close()


def _render(client, body) -> dict:
    r = _post(client, "/api/render", body)
    assert r.status_code == 202, r.text
    return _wait(client, r.json()["id"])


def test_render_writes_the_piece_at_48k_24bit_and_it_renders_identically_with_compose(pieces, tmp_path, capsys):
    s, run, text = pieces
    job = _render(s.client, {"arrangement": text, "name": "first light", "stems": True})
    assert job["state"] == "done", job
    folder = run / "pieces"
    wav = folder / "first light.wav"
    info = sf.info(str(wav))
    assert (info.samplerate, info.subtype) == (48000, "PCM_24")
    assert (folder / "first light.toml").read_text() == text
    piece = json.loads((folder / "first light.json").read_text())
    assert len(piece["parts"]) == 3 and abs(piece["seconds"] - (1.75 + 2.5 + 2.0 - 0.5 - 0.25)) < 1e-3
    assert len((folder / "first light.labels.txt").read_text().splitlines()) == 3
    stems = sorted((folder / "first light-stems").iterdir())
    assert len(stems) == 3 and all(sf.info(str(p)).samplerate == 48000 for p in stems)
    out = job["outputs"]
    assert out["seconds"] == piece["seconds"] and len(out["stems"]) == 3
    for key in ("piece", "arrangement", "json", "labels"):
        assert s.client.get(out[key]).status_code == 200, key
    assert s.client.get(out["piece"]).content == wav.read_bytes()
    # The same piece.toml rendered by the command line: the same samples.
    again = tmp_path / "again.wav"
    code, _, _ = _cli(["compose", str(folder / "first light.toml"), "--out", str(again), "--sample-rate", "48000",
                       "--bit-depth", "24"], capsys)
    assert code == 0
    assert np.array_equal(sf.read(str(again), dtype="int32")[0], sf.read(str(wav), dtype="int32")[0])


def test_render_never_overwrites_without_being_asked(pieces):
    s, run, text = pieces
    assert _render(s.client, {"arrangement": text, "name": "take"})["state"] == "done"
    stamp = (run / "pieces" / "take.wav").stat().st_mtime_ns
    r = _post(s.client, "/api/render", {"arrangement": text, "name": "take"})
    assert r.status_code == 409 and "already exists" in r.json()["error"] and r.json()["field"] == "name"
    assert (run / "pieces" / "take.wav").stat().st_mtime_ns == stamp
    changed = text.replace("gain_db = -3.0", "gain_db = -6.0")
    r = _post(s.client, "/api/render", {"arrangement": changed, "name": "take"})
    assert r.status_code == 409 and (run / "pieces" / "take.toml").read_text() == text  # the arrangement is kept too
    job = _render(s.client, {"arrangement": changed, "name": "take", "overwrite": True, "bit_depth": 16})
    assert job["state"] == "done" and "--force" in job["command"]
    assert (run / "pieces" / "take.toml").read_text() == changed
    assert sf.info(str(run / "pieces" / "take.wav")).subtype == "PCM_16"


@pytest.mark.parametrize("edit, field, words, part", [
    (("crossfade_s = 0.5", "crossfade_s = 1.9"), "arrangement", "together longer than the part", 1),
    (("out_s = 2.5", "out_s = 9.0"), "arrangement", "beyond the clip's end", 2),
    (("in_s = 1.0", 'in_s = "soon"'), "arrangement", "expected a number", 3),
    (("[[part]]", "[[part"), "arrangement", "not valid TOML", None),
    (('clips_dir = "../clips/job"', 'clips_dir = "../clips/none"'), "arrangement", "no clip", 1),
])
def test_bad_arrangements_are_refused_before_rendering(pieces, edit, field, words, part):
    s, run, text = pieces
    r = _post(s.client, "/api/render", {"arrangement": text.replace(*edit, 1), "name": "bad"})
    assert r.status_code == 400, r.text
    assert r.json()["field"] == field and words in r.json()["error"], r.json()
    if part is not None:
        assert r.json()["part"] == part
    assert not (run / "pieces" / "bad.toml").exists() and s.client.get("/api/jobs").json()["jobs"] == []


@pytest.mark.parametrize("body, field", [
    ({"name": "../escape"}, "name"),
    ({"name": ""}, "name"),
    ({"bit_depth": 20}, "bit_depth"),
    ({"sample_rate": 100}, "sample_rate"),
    ({"stems": "yes"}, "stems"),
    ({"arrangement": ""}, "arrangement"),
    ({"run": "r7"}, "run"),
])
def test_bad_render_forms_name_the_field(pieces, body, field):
    s, _, text = pieces
    r = _post(s.client, "/api/render", {"arrangement": text, "name": "ok", **body})
    assert r.status_code == 400 and r.json()["field"] == field, r.text


# ---- pieces of the machinery ---------------------------------------------------------------


def test_generate_progress_json_lines(run, capsys):
    code, out, err = _cli(["generate", str(run), "-n", "2", "--seconds", "0.25", "--progress-json"], capsys)
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert code == 0 and lines
    assert lines[-1]["final"] and lines[-1]["ok"] and lines[-1]["clips_done"] == 2 == lines[-1]["clips_total"]
    assert lines[-1]["done"] == lines[-1]["total"] == 0.5 and lines[-1]["folder"] == out.strip()
    assert all(set(line) >= {"progress", "done", "total", "unit", "elapsed_s", "eta_s"} for line in lines)


def test_checking_a_form_needs_no_torch(tmp_path):
    """The studio starts and refuses bad forms without torch: the checks are the CLI's torch-free ones."""
    run = make_run(tmp_path / "run", tracks=1, track_seconds=2.0, steps=(100,), temperatures=(1.0,))
    code = (
        "import sys, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from starlette.testclient import TestClient\n"
        "from inspire.studio.server import create_app\n"
        "c = TestClient(create_app([sys.argv[1]], token='t', cache_folder=None), base_url='http://127.0.0.1:1')\n"
        "h = {'Authorization': 'Bearer t'}\n"
        "assert c.post('/api/generate', json={'temperature': ['0']}, headers=h).status_code == 400\n"
        "assert c.post('/api/generate', json={'checkpoint': 7}, headers=h).status_code == 400\n"
        "assert c.post('/api/schedule', json={'spec': '0.9:1.1'}, headers=h).status_code == 200\n"
        "assert c.get('/api/runs/r0/tracks').status_code == 200\n"
        "assert 'torch' not in sys.modules, 'the studio imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=SRC))
    assert proc.returncode == 0, proc.stderr[-3000:]
