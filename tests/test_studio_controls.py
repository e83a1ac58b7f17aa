"""The studio's generate form with the command line's second and third controls (in-process, tiny
models): min-p and top-p curves, the collapse guard, steering over a labelled model's labels and
guidance become `inspire generate`'s own flags, each refused with its own message naming the form
field; /api/schedule checks truncation curves; /api/steer resolves a steering curve for drawing;
a job with min-p and a steering morph runs to completion and its sidecars record both."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")

from conftest import make_labelled_run  # noqa: E402
from inspire import clips  # noqa: E402
from test_studio_jobs import AUTH, _cli, _post, _start, _Studio, _tiny_run, _wait  # noqa: E402

SR = 16000
LABELS = ("pads", "drums", "live, take 2")


def labelled_run(root: Path, labels=LABELS) -> Path:
    """A prepared run whose tiny checkpoint knows `labels`, its config.json as `inspire train` writes it."""
    return make_labelled_run(root, labels, seed=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("controls")
    plain = _tiny_run(root / "plain")
    from inspire.samplernn import checkpoint

    checkpoint.write_run_config(plain, checkpoint.spec(checkpoint.load(plain / "checkpoints" / "best.pt")))
    return {"labelled": labelled_run(root / "l"), "plain": plain}


@pytest.fixture
def studio(runs):
    s = _Studio([runs["labelled"], runs["plain"]])
    yield s
    s.close()


def _keys(studio):
    by_name = {r["name"]: r for r in studio.client.get("/api/runs").json()["runs"]}
    return by_name["labelled"]["key"], by_name["plain"]["key"]


def _check(studio, body):
    """check_generate's answer for a form (nothing is started)."""
    return studio.app.state.jobs.check_generate(body)


# ---- the form becomes the command line's flags ---------------------------------------------


def test_runs_list_their_labels(studio):
    runs = {r["name"]: r for r in studio.client.get("/api/runs").json()["runs"]}
    assert runs["labelled"]["labels"] == list(LABELS)
    assert runs["plain"]["labels"] == []


def test_truncation_guard_steer_and_guidance_become_generates_flags(studio, runs):
    labelled, plain = _keys(studio)
    _, argv, request = _check(studio, {"run": plain, "n": 4, "seconds": 1, "min_p": ["0.05", "0s:0,1s:0.1"],
                                       "top_p": "0.9", "guard": True})
    assert argv[6:] == ["--temperature", "1.0", "--min-p", "0.05", "--min-p", "0s:0,1s:0.1", "--top-p", "0.9",
                        "--guard"]
    assert request["min_p"] == ["0.05", "0s:0,1s:0.1"] and request["top_p"] == ["0.9"]
    assert request["guard"] is True and request["steer"] is None and request["guidance"] is None

    # Left out: the command line's defaults, and no flags.
    _, argv, request = _check(studio, {"run": plain, "n": 1, "seconds": 1})
    assert not {"--min-p", "--top-p", "--guard", "--steer", "--guidance"} & set(argv)
    assert request["min_p"] == ["0"] and request["top_p"] == ["1"] and request["guard"] is False

    _, argv, request = _check(studio, {"run": labelled, "n": 2, "seconds": 1,
                                       "steer": ["PADS:drums", '0s:"live, take 2",1s:none'], "guidance": 1.5})
    i = argv.index("--steer")
    assert argv[i:] == ["--steer", "PADS:drums", "--steer", '0s:"live, take 2",1s:none', "--guidance", "1.5"]
    assert request["steer"] == ["PADS:drums", '0s:"live, take 2",1s:none'] and request["guidance"] == 1.5


@pytest.mark.parametrize("body, field, index, words", [
    ({"min_p": ["0.02", "1.0"]}, "min_p", 1, "min-p '1.0': min-p must be a number in [0, 1), got 1.0"),
    ({"min_p": ["0s:0,2s:0.1,1s:0"]}, "min_p", 0, "breakpoint positions must increase"),
    ({"min_p": []}, "min_p", None, "min-p: give at least one schedule"),
    ({"min_p": 0.05}, "min_p", None, "expected a list of curves"),
    ({"top_p": ["0"]}, "top_p", 0, "top-p must be a number in (0, 1], got 0"),
    ({"guard": "yes"}, "guard", None, "guard: expected true or false"),
    ({"guidance": 2}, "guidance", None, "--guidance needs --steer"),
    ({"steer": ["pads"], "guidance": 11}, "guidance", None, "--guidance must be between 0 and 10"),
    ({"steer": ["pads"], "guidance": "loud"}, "guidance", None, "guidance: expected a number"),
    ({"steer": ["pads", "pads:bass"]}, "steer", 1,
     "steer 'pads:bass': unknown label 'bass'; the model knows: pads, drums, live, take 2 (and none)"),
    ({"steer": ["0s:pads,1s:drums,0.5s:none"]}, "steer", 0, "breakpoint positions must increase"),
    ({"steer": []}, "steer", None, "steer: give at least one steering spec"),
    ({"steer": "pads", "guard": True}, "guard", None, "--guard cannot watch steered clips"),
    ({"steer": [3]}, "steer", None, "expected a list of steering specs"),
])
def test_bad_controls_are_refused_naming_the_field(studio, body, field, index, words):
    labelled, _ = _keys(studio)
    r = _post(studio.client, "/api/generate", {"run": labelled, "n": 1, "seconds": 1, **body})
    assert r.status_code == 400, r.text
    got = r.json()
    assert got["field"] == field and words in got["error"] and got.get("index") == index, got
    assert studio.client.get("/api/jobs").json()["jobs"] == []


def test_steering_an_unlabelled_model_is_refused_as_the_command_line_refuses_it(studio, runs, capsys):
    _, plain = _keys(studio)
    r = _post(studio.client, "/api/generate", {"run": plain, "n": 1, "seconds": 1, "steer": ["pads"]})
    assert r.status_code == 400 and r.json()["field"] == "steer"
    code, _, err = _cli(["generate", str(runs["plain"]), "-n", "1", "--seconds", "1", "--steer", "pads"], capsys)
    assert code == 2 and err.strip() == f"inspire generate: error: {r.json()['error']}"
    assert "was trained without labels; train with --label-by track" in r.json()["error"]


@pytest.mark.parametrize("flags, body", [
    (["--min-p", "0.02", "--min-p", "1.5"], {"min_p": ["0.02", "1.5"]}),
    (["--top-p", "0:1,0.5:0.9,0.4:0.8"], {"top_p": ["0:1,0.5:0.9,0.4:0.8"]}),
    (["--steer", "pads:nope"], {"steer": ["pads:nope"]}),
    (["--steer", "pads", "--guidance", "12"], {"steer": ["pads"], "guidance": 12}),
    (["--guidance", "1"], {"guidance": 1}),
    (["--steer", "drums", "--guard"], {"steer": ["drums"], "guard": True}),
])
def test_the_messages_are_the_command_lines(studio, runs, capsys, flags, body):
    labelled, _ = _keys(studio)
    code, _, err = _cli(["generate", str(runs["labelled"]), "-n", "1", "--seconds", "1", *flags], capsys)
    r = _post(studio.client, "/api/generate", {"run": labelled, "n": 1, "seconds": 1, **body})
    assert code == 2 and r.status_code == 400
    assert err.strip() == f"inspire generate: error: {r.json()['error']}"


# ---- the curves for the page ---------------------------------------------------------------


def test_schedule_checks_truncation_curves_with_their_own_ranges(studio):
    r = _post(studio.client, "/api/schedule", {"spec": "0s:0,30s:0.05", "control": "min-p", "seconds": 45})
    assert r.status_code == 200, r.text
    assert r.json()["control"] == "min-p" and r.json()["resolved"]["times_s"] == [0.0, 30.0, 45.0]
    bad = _post(studio.client, "/api/schedule", {"spec": "1.2", "control": "min-p"})
    assert bad.status_code == 400 and bad.json() == {
        "error": "min-p '1.2': min-p must be a number in [0, 1), got 1.2", "field": "spec"}
    assert _post(studio.client, "/api/schedule", {"spec": "0", "control": "top-p"}).json()["field"] == "spec"
    assert _post(studio.client, "/api/schedule", {"spec": "1.2"}).status_code == 200  # a temperature
    assert _post(studio.client, "/api/schedule", {"spec": "1", "control": "top-k"}).json()["field"] == "control"


def test_steer_resolves_the_curve_for_drawing(studio):
    labelled, plain = _keys(studio)
    morph = _post(studio.client, "/api/steer", {"run": labelled, "spec": "pads:DRUMS", "seconds": 30})
    assert morph.status_code == 200, morph.text
    m = morph.json()
    assert m["labels"] == list(LABELS) and m["labels_at"] == ["pads", "drums"] and m["times_s"] == [0.0, 30.0]
    assert m["series"] == [{"label": "pads", "row": 1, "weights": [1.0, 0.0]},
                           {"label": "drums", "row": 2, "weights": [0.0, 1.0]}]

    # Breakpoints in seconds, one past the clip's end: drawn to it; weights sum to 1 everywhere.
    s = _post(studio.client, "/api/steer", {"run": labelled, "spec": "0s:drums,10s:\"live, take 2\",40s:none",
                                            "seconds": 30}).json()
    assert s["times_s"] == [0.0, 10.0, 30.0, 40.0]
    w = {x["label"]: x["weights"] for x in s["series"]}
    assert list(w) == ["drums", "live, take 2", "none"] and [x["row"] for x in s["series"]] == [2, 3, 0]
    assert w["drums"] == [1.0, 0.0, 0.0, 0.0] and w["none"] == pytest.approx([0, 0, 2 / 3, 1.0], abs=1e-6)
    assert np.allclose(np.sum([v for v in w.values()], axis=0), 1.0)

    unknown = _post(studio.client, "/api/steer", {"run": labelled, "spec": "pads:bass", "seconds": 30})
    assert unknown.status_code == 400 and unknown.json()["field"] == "spec"
    assert unknown.json()["error"] == ("steer 'pads:bass': unknown label 'bass'; the model knows: pads, drums, "
                                       "live, take 2 (and none)")
    without = _post(studio.client, "/api/steer", {"run": plain, "spec": "pads", "seconds": 30})
    assert without.status_code == 400 and "was trained without labels" in without.json()["error"]
    assert _post(studio.client, "/api/steer", {"run": labelled, "spec": "pads", "seconds": -1}).json()["field"] \
        == "seconds"
    assert studio.client.post("/api/steer", json={"spec": "pads"}).status_code == 401  # the token guards it
    assert studio.client.post("/api/steer", json={"spec": "pads"}, headers=AUTH).json()["field"] == "run"


# ---- a steered, truncated job runs to completion -------------------------------------------


def test_a_job_with_min_p_and_a_steering_morph_runs_and_its_sidecars_record_both(studio, runs):
    labelled, _ = _keys(studio)
    jid = _start(studio.client, {"run": labelled, "n": 2, "seconds": 0.5, "seed": 3, "min_p": ["0s:0,0.5s:0.1"],
                                 "steer": ["pads:drums"], "guidance": 1.5})
    job = _wait(studio.client, jid)
    assert job["state"] == "done", job
    assert job["request"]["min_p"] == ["0s:0,0.5s:0.1"] and job["request"]["steer"] == ["pads:drums"]
    assert job["command"].endswith("--temperature 1.0 --min-p 0s:0,0.5s:0.1 --steer pads:drums --guidance 1.5 "
                                   "--seed 3")
    records = clips.scan(Path(job["folder"]["path"]))
    assert sorted(r.id for r in records) == sorted(job["clips"]) and len(records) == 2
    for r in records:
        assert r.min_p["spec"] == "0s:0,0.5s:0.1" and r.min_p["values"][-1] == pytest.approx(0.1, abs=0.01)
        assert r.steer["spec"] == "pads:drums" and r.steer["guidance"] == 1.5
        assert r.steer["mixes"][0] == {"pads": 1.0} and r.steer["mixes"][-1] == {"drums": 1.0}
