"""The studio's HTTP API in-process (Starlette's TestClient): listing, marks round trips,
security (token, Host, traversal), Range requests, faults, the runs view's data."""

from __future__ import annotations

import base64
import json
import multiprocessing
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
with warnings.catch_warnings():  # newer Starlette prefers httpx2 and says so; httpx works with every version
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from inspire import clips  # noqa: E402
from inspire.studio import openapi, peaks, runs  # noqa: E402
from inspire.studio.server import create_app  # noqa: E402
from studio_data import make_clips, make_run, tone  # noqa: E402

TOKEN = "test-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture
def run(tmp_path):
    run = make_run(tmp_path / "run")
    make_clips(run / "clips" / "job", 12, run=run)
    return run


@pytest.fixture
def client(run, tmp_path):
    app = create_app([run], token=TOKEN, cache_folder=tmp_path / "cache")
    with TestClient(app, base_url="http://127.0.0.1:8737") as c:
        yield c


def _clips(client) -> list[dict]:
    r = client.get("/api/clips")
    assert r.status_code == 200, r.text
    return r.json()["clips"]


def _marks(body):
    return {"verdict": None, "star": False, "regions": [], **body}


# ---- listing and reading -------------------------------------------------------------------


def test_clips_are_listed_ranked_with_their_records_and_audio(client, run):
    entries = _clips(client)
    assert len(entries) == 12
    assert [e["record"]["curation"]["rank"] for e in entries] == list(range(1, 13))
    first = entries[0]
    assert first["status"] == "ready"
    assert first["record"]["marks"] == {"verdict": None, "star": False, "regions": []}
    audio = client.get(first["audio_url"])
    assert audio.status_code == 200
    assert audio.content == (run / "clips" / "job" / f"{first['id']}.wav").read_bytes()
    one = client.get(f"/api/clips/{first['id']}")
    assert one.status_code == 200 and one.json()["record"] == first["record"]


def test_folders_list_the_run_and_its_clips_folder(client, run):
    data = client.get("/api/folders").json()
    assert data["runs"][0]["path"] == str(run.resolve())
    assert [f["path"] for f in data["folders"]] == [str((run / "clips" / "job").resolve())]
    assert data["folders"][0]["run"] == str(run.resolve())


def test_a_folder_of_runs_opens_the_runs_inside_it(run, tmp_path):
    """`inspire studio DIR` where DIR holds the run (the demo's folder): the run is opened too
    (runs view, generate, live), and its clips are listed once, under it."""
    loose = tmp_path / "other" / "clips"
    make_clips(loose, 2, seed=3)
    app = create_app([tmp_path], token=TOKEN, cache_folder=tmp_path / "cache")
    with TestClient(app, base_url="http://127.0.0.1:8737") as c:
        data = c.get("/api/folders").json()
        assert [r["path"] for r in data["runs"]] == [str(run.resolve())]
        paths = sorted(f["path"] for f in data["folders"])
        assert paths == sorted([str((run / "clips" / "job").resolve()), str(loose.resolve())])
        assert len(_clips(c)) == 14
        assert c.get(_clips(c)[0]["audio_url"]).status_code == 200
        assert c.get("/api/runs").json()["runs"][0]["path"] == str(run.resolve())


def test_page_is_served_and_gets_the_token_only_when_authenticated(client):
    anonymous = client.get("/")
    assert anonymous.status_code == 200
    assert TOKEN not in anonymous.text and '<script type="module" src="/static/app.js">' in anonymous.text
    page = client.get(f"/?token={TOKEN}")
    assert f'content="{TOKEN}"' in page.text
    assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
    js = client.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    vendored = client.get("/static/vendor/wavesurfer/wavesurfer.esm.js")
    assert vendored.status_code == 200 and "javascript" in vendored.headers["content-type"]


# ---- marks ---------------------------------------------------------------------------------


def test_put_marks_writes_the_sidecar_and_answers_with_the_stored_record(client, run):
    cid = _clips(client)[0]["id"]
    body = {"verdict": "keep", "star": True, "regions": [[1.25, 2.0], [0.1, 0.5]]}
    r = client.put(f"/api/clips/{cid}/marks", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    stored = clips.read(run / "clips" / "job" / f"{cid}.json")
    assert stored.marks.verdict == "keep" and stored.marks.star is True
    assert stored.marks.regions == ((0.1, 0.5), (1.25, 2.0))
    assert r.json()["record"]["marks"] == {"verdict": "keep", "star": True, "regions": [[0.1, 0.5], [1.25, 2.0]]}
    assert stored.curation["rank"] == 1  # the rest of the record is untouched
    cleared = client.put(f"/api/clips/{cid}/marks", json=_marks({}), headers=AUTH)
    assert cleared.json()["record"]["marks"] == {"verdict": None, "star": False, "regions": []}
    assert clips.read(run / "clips" / "job" / f"{cid}.json").marks.empty


@pytest.mark.parametrize(
    "body, status, words",
    [
        (b"{not json", 400, "not valid JSON"),
        (b'{"verdict": "maybe", "star": false, "regions": []}', 400, "verdict"),
        (b'{"verdict": null, "star": "yes", "regions": []}', 400, "star"),
        (b'{"verdict": null, "star": false, "regions": [[2, 1]]}', 400, "regions[0]"),
        (b'{"verdict": null, "star": false, "regions": [[0, 99]]}', 400, "regions[0]"),
        (b'{"verdict": null, "star": false, "regions": [[0, "1"]]}', 400, "two numbers"),
        (b'{"verdict": "keep"}', 400, "missing key"),
        (b'{"verdict": null, "star": false, "regions": [], "colour": 1}', 400, "unknown key"),
        (b"[1, 2]", 400, "expected an object"),
        (b'{"verdict": null, "star": false, "regions": [' + b",".join([b"[0, 1]"] * 12000) + b"]}", 413, "too large"),
    ],
)
def test_bad_marks_are_refused_with_a_clear_message_and_nothing_is_written(client, run, body, status, words):
    cid = _clips(client)[0]["id"]
    side = run / "clips" / "job" / f"{cid}.json"
    before = side.read_bytes()
    r = client.put(f"/api/clips/{cid}/marks", content=body, headers={**AUTH, "Content-Type": "application/json"})
    assert r.status_code == status
    assert words in r.json()["error"]
    assert side.read_bytes() == before


def test_marks_survive_curate_run_again(client, run):
    from inspire.curate import curate

    folder = run / "clips" / "job"
    cid = _clips(client)[-1]["id"]
    body = {"verdict": "keep", "star": True, "regions": [[0.5, 1.5]]}
    assert client.put(f"/api/clips/{cid}/marks", json=body, headers=AUTH).status_code == 200
    curate.curate_folder(folder, run_dir=run)
    record = clips.read(folder / f"{cid}.json")
    assert record.marks.verdict == "keep" and record.marks.star and record.marks.regions == ((0.5, 1.5),)
    assert record.curation is not None and "features" in record.curation
    listed = next(e for e in _clips(client) if e["id"] == cid)
    assert listed["record"]["marks"]["regions"] == [[0.5, 1.5]]


def test_marks_from_the_studio_steer_compose_auto(client, run):
    from inspire.compose import arrange
    from inspire.curate import curate

    folder = run / "clips" / "job"
    quiet = _clips(client)[-1]["id"]
    sf.write(str(folder / f"{quiet}.wav"), np.zeros(3 * 16000, np.float32), 16000)  # curate discards silence
    curation = curate.curate_folder(folder, run_dir=run)
    kept = [c["id"] for c in curation["clips"] if c["verdict"] == "keep"]
    dropped = [c["id"] for c in curation["clips"] if c["verdict"] == "discard"]
    assert kept and dropped == [quiet]
    put = lambda cid, **m: client.put(f"/api/clips/{cid}/marks", json=_marks(m), headers=AUTH)  # noqa: E731
    assert put(kept[0], verdict="discard").status_code == 200
    assert put(dropped[0], verdict="keep", star=True, regions=[[0.5, 2.0]]).status_code == 200
    chosen, skipped, _ = arrange.rank_clips(folder)
    ids = [c.id for c in chosen]
    assert kept[0] not in ids and f"{kept[0]}.wav: marked discard" in skipped
    assert ids[0] == dropped[0] and chosen[0].star and chosen[0].regions == ((0.5, 2.0),)


def _hammer_curation(side: str, n: int) -> None:
    from dataclasses import replace

    for k in range(n):
        clips.update(side, lambda r, k=k: replace(r, curation={**(r.curation or {}), "counter": k}))


def test_studio_and_a_cli_writing_the_same_sidecar_at_once_lose_nothing(client, run):
    cid = _clips(client)[0]["id"]
    side = run / "clips" / "job" / f"{cid}.json"
    n = 60
    ctx = multiprocessing.get_context("spawn")
    other = ctx.Process(target=_hammer_curation, args=(str(side), n))
    other.start()
    for k in range(n):
        body = {"verdict": None, "star": k % 2 == 0, "regions": [[0.0, 0.1 + k / 100]]}
        r = client.put(f"/api/clips/{cid}/marks", json=body, headers=AUTH)
        assert r.status_code == 200, r.text
    other.join(60)
    assert other.exitcode == 0
    record = clips.read(side)
    assert record.curation["counter"] == n - 1  # every write of the other process landed last-to-last
    assert record.marks.regions == ((0.0, round(0.1 + (n - 1) / 100, 3)),) and record.marks.star is False
    assert record.curation["rank"] == 1  # and neither writer dropped the other's keys


# ---- security ------------------------------------------------------------------------------


def test_state_changes_need_the_token_even_on_loopback(client, run):
    cid = _clips(client)[0]["id"]
    side = run / "clips" / "job" / f"{cid}.json"
    before = side.read_bytes()
    body = {"verdict": "discard", "star": False, "regions": []}
    assert client.put(f"/api/clips/{cid}/marks", json=body).status_code == 401
    wrong = {"Authorization": "Bearer wrong"}
    assert client.put(f"/api/clips/{cid}/marks", json=body, headers=wrong).status_code == 401
    # The session cookie alone never authorises a change (other sites' requests carry it too).
    client.get(f"/?token={TOKEN}")
    assert client.cookies, "the page load should have set the session cookie"
    refused = client.put(f"/api/clips/{cid}/marks", json=body)
    assert refused.status_code == 401 and "token" in refused.json()["error"]
    assert client.put("/api/runs/r0/checkpoint", json={"checkpoint": "step-00000100"}).status_code == 401
    assert side.read_bytes() == before
    assert client.put(f"/api/clips/{cid}/marks?token={TOKEN}", json=body).status_code == 200


def test_off_loopback_every_request_needs_the_token(run, tmp_path):
    app = create_app([run], token=TOKEN, loopback=False, cache_folder=None)
    with TestClient(app, base_url="http://studio.example:8737") as c:
        for url in ("/", "/api/clips", "/api/folders", "/static/app.js", "/api/openapi.json"):
            assert c.get(url).status_code == 401, url
        assert c.get("/api/clips", headers=AUTH).status_code == 200
        page = c.get(f"/?token={TOKEN}")
        assert page.status_code == 200
        entries = c.get("/api/clips").json()["clips"]  # now with the cookie the page load set
        assert c.get(entries[0]["audio_url"]).status_code == 200
        assert c.put(f"/api/clips/{entries[0]['id']}/marks", json=_marks({})).status_code == 401
        assert c.put(f"/api/clips/{entries[0]['id']}/marks", json=_marks({}), headers=AUTH).status_code == 200


def test_loopback_refuses_other_host_names(client):
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the studio.
    assert client.get("/api/clips", headers={"Host": "evil.example:8737"}).status_code == 403
    for host in ("localhost:8737", "127.0.0.1:8737", "[::1]:8737"):
        assert client.get("/api/folders", headers={"Host": host}).status_code == 200, host


def test_loopback_and_urls():
    from inspire.studio.server import is_loopback, url_for

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.0.0.2", "localhost", "::1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.5", "evil.example", "127.0.0.1.evil.example"))
    assert url_for("::1", 8737, "abc") == "http://[::1]:8737/?token=abc"
    assert url_for("127.0.0.1", 1, "t") == "http://127.0.0.1:1/?token=t"


def test_only_files_inside_the_opened_folders_are_served(client, run, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the browser")
    (run / "clips" / "job" / "link.wav").symlink_to(secret)
    (run / "clips" / "link-dir").symlink_to(tmp_path)
    inside = client.get("/files/r0/metrics.jsonl")
    assert inside.status_code == 200
    missing = client.get("/files/r0/no-such-file.wav")
    assert missing.status_code == 404
    for url in (
        "/files/r0/../secret.txt",
        "/files/r0/%2e%2e/secret.txt",
        "/files/r0/%2E%2E%2Fsecret.txt",
        "/files/r0/..%2fsecret.txt",
        "/files/r0/%252e%252e/secret.txt",
        f"/files/r0/{secret}",
        f"/files/r0//{secret}",
        "/files/r0/clips/job/link.wav",
        "/files/r0/clips/link-dir/secret.txt",
        "/files/r9/secret.txt",
        "/api/waveform/r0/../secret.txt",
        "/api/waveform/r0/clips/job/link.wav",
    ):
        r = client.get(url)
        assert r.status_code in (403, 404), url
        assert "not for the browser" not in r.text
        assert r.content == missing.content or r.status_code == 403, url  # says nothing about the file


def test_audio_is_served_with_range_requests(client, run):
    entry = _clips(client)[0]
    data = (run / "clips" / "job" / f"{entry['id']}.wav").read_bytes()
    r = client.get(entry["audio_url"], headers={"Range": "bytes=100-1099"})
    assert r.status_code == 206
    assert r.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert r.content == data[100:1100]
    tail = client.get(entry["audio_url"], headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == data[-10:]
    assert client.get(entry["audio_url"], headers={"Range": f"bytes={len(data) + 10}-"}).status_code == 416


# ---- faults --------------------------------------------------------------------------------


def test_deleted_generating_and_broken_clips_show_as_such(client, run):
    folder = run / "clips" / "job"
    entries = _clips(client)
    gone = entries[0]["id"]
    (folder / f"{gone}.wav").unlink()
    (folder / f"{gone}.json").unlink()
    assert client.get(f"/api/clips/{gone}").status_code == 404
    r = client.put(f"/api/clips/{gone}/marks", json=_marks({"verdict": "keep"}), headers=AUTH)
    assert r.status_code == 404 and "deleted" in r.json()["error"]
    sf.write(str(folder / ".0999-partial.partial.wav"), tone(0.5, 1), 16000)
    sf.write(str(folder / "0998-nosidecar.wav"), tone(0.5, 2), 16000)
    sf.write(str(folder / "0997-broken.wav"), tone(0.5, 3), 16000)
    (folder / "0997-broken.json").write_text("{ half a sidecar")
    listed = {e["id"]: e for e in _clips(client)}
    assert gone not in listed
    assert listed["0999-partial"]["status"] == "generating" and listed["0999-partial"]["record"] is None
    assert listed["0998-nosidecar"]["status"] == "generating"
    assert listed["0997-broken"]["status"] == "unreadable"
    busy = client.put("/api/clips/0998-nosidecar/marks", json=_marks({}), headers=AUTH)
    assert busy.status_code == 409 and "being generated" in busy.json()["error"]


def test_audio_without_a_sidecar_is_shown_and_marking_it_makes_one(client, run):
    folder = run / "clips" / "job"
    wav = folder / "field-recording.wav"
    sf.write(str(wav), tone(2.0, 9), 16000, subtype="PCM_16")
    an_hour_ago = time.time() - 3600
    os.utime(wav, (an_hour_ago, an_hour_ago))  # not a clip whose sidecar is on its way
    entry = next(e for e in _clips(client) if e["id"] == "field-recording")
    assert entry["status"] == "ready" and entry["record"]["seconds"] == pytest.approx(2.0)
    assert entry["record"]["curation"] is None and client.get(entry["audio_url"]).status_code == 200
    r = client.put("/api/clips/field-recording/marks", json=_marks({"verdict": "keep", "regions": [[0.5, 1.5]]}),
                   headers=AUTH)
    assert r.status_code == 200, r.text
    record = clips.read(folder / "field-recording.json")
    assert record.marks.verdict == "keep" and record.marks.regions == ((0.5, 1.5),) and record.file == wav.name
    too_long = client.put("/api/clips/field-recording/marks", json=_marks({"regions": [[0.5, 2.5]]}), headers=AUTH)
    assert too_long.status_code == 400


def test_the_same_id_in_two_folders_needs_the_folder(run, tmp_path):
    other = tmp_path / "copy"
    make_clips(other, 2, run=run)
    app = create_app([run, other], token=TOKEN, cache_folder=None)
    with TestClient(app, base_url="http://127.0.0.1:8737") as c:
        folders = {f["path"]: f["key"] for f in c.get("/api/folders").json()["folders"]}
        cid = next(e["id"] for e in c.get("/api/clips").json()["clips"] if e["folder"] == folders[str(other.resolve())])
        r = c.put(f"/api/clips/{cid}/marks", json=_marks({"star": True}), headers=AUTH)
        assert r.status_code == 409 and "?folder=" in r.json()["error"]
        key = folders[str(other.resolve())]
        ok = c.put(f"/api/clips/{cid}/marks?folder={key}", json=_marks({"star": True}), headers=AUTH)
        assert ok.status_code == 200 and ok.json()["folder"] == key
        assert clips.read(other / f"{cid}.json").marks.star
        assert not clips.read(run / "clips" / "job" / f"{cid}.json").marks.star


def test_new_clips_folders_appear_while_the_studio_runs(client, run):
    assert len(client.get("/api/folders").json()["folders"]) == 1
    make_clips(run / "clips" / "job2", 3, seed=5)
    assert len(client.get("/api/folders").json()["folders"]) == 2
    assert len(_clips(client)) == 15


# ---- waveforms -----------------------------------------------------------------------------


def test_waveform_peaks_and_spectrogram_are_computed_once_and_cached(client, run, tmp_path):
    entry = _clips(client)[0]
    r = client.get(entry["waveform_url"])
    assert r.status_code == 200
    data = r.json()
    assert data["duration"] == pytest.approx(3.0)
    assert data["peaks"]["count"] == 300
    assert len(base64.b64decode(data["peaks"]["data"])) == 300
    spec = data["spectrogram"]
    assert len(base64.b64decode(spec["data"])) == spec["columns"] * spec["bands"]
    cached = list((tmp_path / "cache").rglob("*.json"))
    assert len(cached) == 1
    # A fresh app reads the cache file instead of the audio.
    wav = run / "clips" / "job" / f"{entry['id']}.wav"
    mtime = wav.stat().st_mtime_ns
    app = create_app([run], token=TOKEN, cache_folder=tmp_path / "cache")
    with TestClient(app, base_url="http://127.0.0.1:8737") as c2:
        original = peaks.compute
        try:
            peaks.compute = lambda path: pytest.fail("recomputed despite the cache")
            assert c2.get(entry["waveform_url"]).json() == data
        finally:
            peaks.compute = original
    # A changed file is computed again.
    sf.write(str(wav), np.zeros(16000, np.float32), 16000)
    os.utime(wav, ns=(mtime + 10**9, mtime + 10**9))
    again = client.get(entry["waveform_url"]).json()
    assert again["duration"] == pytest.approx(1.0)
    assert client.get("/api/waveform/r0/metrics.jsonl").status_code == 404


def test_peaks_and_spectrogram_say_where_the_sound_is(tmp_path):
    sr = 16000
    t = np.arange(2 * sr) / sr
    x = np.where(t < 1.0, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)
    path = tmp_path / "half.wav"
    sf.write(str(path), x, sr, subtype="FLOAT")
    data = peaks.compute(path)
    p = np.frombuffer(base64.b64decode(data["peaks"]["data"]), np.uint8)
    assert p.size == 200
    assert np.all(np.abs(p[5:95].astype(int) - 128) <= 1) and np.all(p[105:] == 0)
    spec = data["spectrogram"]
    s = np.frombuffer(base64.b64decode(spec["data"]), np.uint8).reshape(spec["columns"], spec["bands"])
    edges = np.geomspace(spec["low_hz"], spec["high_hz"], spec["bands"] + 1)
    band = int(np.searchsorted(edges, 1000.0)) - 1
    assert abs(int(s[spec["columns"] // 4].argmax()) - band) <= 1
    assert s[spec["columns"] // 4].max() == 255 and s[-spec["columns"] // 4].max() == 0


# ---- lineage -------------------------------------------------------------------------------


def test_lineage_audio_is_the_source_passage_from_the_prepared_track(client, run):
    from inspire.audio.dataset import load_prepared
    from inspire.audio.quantize import dequantize

    entry = next(e for e in _clips(client) if e["record"]["curation"]["lineage"]["matches"])
    match = entry["record"]["curation"]["lineage"]["matches"][0]
    r = client.get(entry["lineage_urls"][0])
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    audio, sr = sf.read(__import__("io").BytesIO(r.content), dtype="float32")
    prep = load_prepared(run)
    track = next(t for t in prep.tracks if t.name == match["track"])
    start = round(match["source_start_s"] * sr)
    n = round((match["clip_end_s"] - match["clip_start_s"]) * sr)
    expected = dequantize(np.asarray(prep.array(track)[start : start + n]), kind="mu-law", levels=256)
    assert audio.size == n
    np.testing.assert_allclose(audio, expected, atol=1 / 32768 + 1e-6)
    assert client.get(f"/api/clips/{entry['id']}/lineage/9.wav").status_code == 404


# ---- runs ----------------------------------------------------------------------------------


def test_runs_list_checkpoints_with_previews_and_the_choice(client, run):
    data = client.get("/api/runs").json()["runs"]
    assert len(data) == 1
    r0 = data[0]
    assert [c["step"] for c in r0["checkpoints"]] == [300, 200, 100]
    assert [c["best"] for c in r0["checkpoints"]] == [False, True, False]
    assert [c["last"] for c in r0["checkpoints"]] == [True, False, False]
    preview = r0["checkpoints"][0]["previews"][0]
    assert preview["temperature"] == 0.9
    wav = run / "previews" / "step-00000300" / "temperature-0.90.wav"
    assert client.get(preview["audio_url"]).content == wav.read_bytes()
    assert client.get(preview["waveform_url"]).json()["duration"] == pytest.approx(1.0)
    assert r0["chosen"] is None

    chosen = client.put("/api/runs/r0/checkpoint", json={"checkpoint": "step-00000200"}, headers=AUTH)
    assert chosen.status_code == 200 and chosen.json()["chosen"] == "step-00000200"
    assert json.loads((run / "studio.json").read_text())["checkpoint"] == "step-00000200"
    by_number = client.put("/api/runs/r0/checkpoint", json={"checkpoint": "100"}, headers=AUTH)
    assert by_number.json()["chosen"] == "step-00000100"
    bad = client.put("/api/runs/r0/checkpoint", json={"checkpoint": "step-00000150"}, headers=AUTH)
    assert bad.status_code == 400 and "no checkpoint or previews at step 150" in bad.json()["error"]
    assert client.put("/api/runs/r0/checkpoint", json={"step": 1}, headers=AUTH).status_code == 400
    cleared = client.put("/api/runs/r0/checkpoint", json={"checkpoint": None}, headers=AUTH)
    assert cleared.json()["chosen"] is None
    assert client.get("/api/runs/r7/metrics").status_code == 404


def test_metrics_are_read_incrementally_and_a_half_written_line_waits(client, run):
    first = client.get("/api/runs/r0/metrics").json()
    assert len(first["rows"]) == 30 and first["next"] == 30 and first["baseline_bits"] == 7.1
    with open(run / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"step": 310, "train_bits": 4.4}) + "\n" + '{"step": 320, "train_b')
    more = client.get(f"/api/runs/r0/metrics?since={first['next']}").json()
    assert [r["step"] for r in more["rows"]] == [310] and more["next"] == 31
    assert client.get("/api/runs/r0/metrics?since=x").status_code == 400
    restarted = runs.metrics(run, since=500)  # a log shorter than `since`: read from the start
    assert len(restarted["rows"]) == 31


# ---- the API is documented -----------------------------------------------------------------


def test_every_route_is_in_the_openapi_document_and_back(client):
    app = client.app
    routes = set()
    for route in app.routes:
        path = getattr(route, "path", "")
        if path == "/static":
            continue
        path = path.replace("{path:path}", "{path}").replace("{n:int}", "{n}")
        methods = {m.lower() for m in (getattr(route, "methods", None) or [])} - {"head"}
        for m in methods:
            routes.add((path, m))
    documented = {(p, m) for p, ops in openapi.SPEC["paths"].items() for m in ops}
    assert routes == documented
    served = client.get("/api/openapi.json").json()
    assert served["openapi"].startswith("3.") and "/api/clips/{id}/marks" in served["paths"]
    assert "Bearer" in client.get("/api/docs").text


def test_every_static_file_is_package_data():
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[1]
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["inspire.studio"]
    studio = root / "src" / "inspire" / "studio"
    files = [p.relative_to(studio).as_posix() for p in (studio / "static").rglob("*") if p.is_file()]
    assert files and {"static/index.html", "static/vendor/wavesurfer/LICENSE"} <= set(files)
    def packaged(f):
        return any(fnmatch.fnmatch(f, pat) and f.count("/") == pat.count("/") for pat in patterns)

    missing = [f for f in files if not packaged(f)]
    assert missing == [], "add these to [tool.setuptools.package-data] in pyproject.toml"


# ---- the command line ----------------------------------------------------------------------


def test_studio_never_imports_torch(run):
    code = (
        "import sys; from inspire.cli import build_parser; build_parser().parse_args(['studio', '--no-browser']);"
        "from inspire.studio.server import create_app; from starlette.testclient import TestClient;"
        f"c = TestClient(create_app([{str(run)!r}], cache_folder=None), base_url='http://127.0.0.1');"
        "e = c.get('/api/clips').json()['clips']; c.get(e[0]['waveform_url']); c.get(e[0]['lineage_urls'][0]"
        " if e[0]['lineage_urls'] else '/'); c.get('/api/runs');"
        "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')"
    )
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_inspire_studio_prints_its_url_first_and_serves(run):
    env = {**os.environ, "PYTHONPATH": SRC, "XDG_CACHE_HOME": str(run.parent / "xdg")}
    proc = subprocess.Popen([sys.executable, "-m", "inspire", "studio", str(run), "--port", "0", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:") and "/?token=" in line
        import httpx

        base, token = line.split("/?token=")
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"{base}/api/clips", timeout=5)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert r.status_code == 200 and len(r.json()["clips"]) == 12
        cid = r.json()["clips"][0]["id"]
        put = httpx.put(f"{base}/api/clips/{cid}/marks", json=_marks({"star": True}),
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert put.status_code == 200
        port = int(base.rsplit(":", 1)[1])
        again = [sys.executable, "-m", "inspire", "studio", str(run), "--port", str(port), "--no-browser"]
        busy = subprocess.run(again, capture_output=True, text=True, env=env, timeout=60)
        assert busy.returncode == 2
        assert busy.stderr.count("\n") == 1 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    finally:
        proc.terminate()
        proc.wait(30)


def test_inspire_studio_refuses_a_missing_folder(tmp_path):
    from inspire.cli import main

    assert main(["studio", str(tmp_path / "nope"), "--no-browser"]) == 2
