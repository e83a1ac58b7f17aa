"""The arranger's API in-process: the keepers bin, pieces listed, opened, checked and saved, and
the round trip of a hand-written piece.toml through the studio's JSON (one format, two editors):
saved again it renders sample for sample what `inspire compose` renders from the original."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("starlette")
pytest.importorskip("httpx")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

from inspire import clips  # noqa: E402
from inspire.cli import main  # noqa: E402
from inspire.compose import arrangement, master  # noqa: E402
from inspire.errors import UserInputError  # noqa: E402
from inspire.studio.server import create_app  # noqa: E402
from studio_data import make_clips, make_run  # noqa: E402

TOKEN = "pieces-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def run(tmp_path):
    run = make_run(tmp_path / "run")
    make_clips(run / "clips" / "job", 8, run=run, seconds=3.0)
    return run


@pytest.fixture
def client(run, tmp_path):
    app = create_app([run], token=TOKEN, cache_folder=None)
    with TestClient(app, base_url="http://127.0.0.1:8737") as c:
        yield c


def _records(run) -> list[clips.ClipRecord]:
    return sorted(clips.scan(run / "clips" / "job"), key=lambda r: r.curation["rank"])


def _render(toml: Path, out: Path) -> np.ndarray:
    assert main(["compose", str(toml), "--out", str(out), "--noise-reduction", "off"]) == 0
    x, _ = sf.read(str(out), dtype="int16")
    return x


HAND_WRITTEN = """\
# Written by hand: three stretches of the job's clips.
# (a second line of header)

clips_dir = "../clips/job"
noise_reduction = "off"
lufs = -20
fade_in_s = 0.1
fade_out_s = 0.3

# the opening: quiet
[[part]]
clip = "{a}"
in_s = 0.25
out_s = 2.0
gain_db = -1.5
crossfade_s = 0.4

[[part]]
clip = "../clips/job/{b}.wav"
in_s = 0.5
crossfade_s = 0.3333333

# ends on the third
[[part]]
clip = "{c}"
out_s = 2.75
gain_db = 2
"""


def _hand_written(run) -> tuple[Path, list[str]]:
    ids = [r.id for r in _records(run)][:3]
    path = run / "pieces" / "by-hand.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(HAND_WRITTEN.format(a=ids[0], b=ids[1], c=ids[2]), encoding="utf-8")
    return path, ids


def _as_the_page_sends(piece: dict) -> dict:
    """What the arranger sends back for a piece it opened and did not change."""
    doc = dict(piece["arrangement"])
    doc["part"] = [{**p, "file": info["file"], "note": note}
                   for p, info, note in zip(doc["part"], piece["parts"], piece["notes"], strict=True)]
    return {"arrangement": doc, "clips_dir_at": piece["clips_dir_at"], "header": piece["header"]}


# ---- the bin ---------------------------------------------------------------------------------


def test_keepers_are_kept_clips_whole_and_their_passages_with_lineage(client, run):
    records = _records(run)
    kept = [r for r in records if r.auto_verdict == "keep"]
    dropped = [r for r in records if r.auto_verdict == "discard"]
    assert kept and dropped
    with_lineage = next(r for r in kept if r.curation["lineage"]["matches"])
    match = with_lineage.curation["lineage"]["matches"][0]
    # A person's passage in one kept clip; curation's keeper region (a collapse) in another.
    mine = (round(match["clip_start_s"], 3), round(match["clip_end_s"], 3))
    assert client.put(f"/api/clips/{with_lineage.id}/marks", headers=AUTH,
                      json={"verdict": None, "star": True, "regions": [list(mine)]}).status_code == 200
    other = next(r for r in kept if r.id != with_lineage.id)
    clips.update(run / "clips" / "job" / f"{other.id}.json",
                 lambda r: replace(r, curation={**r.curation, "regions": [[0.0, 1.25]]}))

    items = client.get("/api/keepers").json()["keepers"]
    whole = [i for i in items if i["kind"] == "clip"]
    assert {i["id"] for i in whole} == {r.id for r in kept}
    assert items[0]["id"] == with_lineage.id and items[0]["star"]  # favourites first
    passage = next(i for i in items if i["kind"] == "region" and i["id"] == with_lineage.id)
    assert (passage["source"], passage["in_s"], passage["out_s"]) == ("you", *mine)
    assert passage["lineage"] == [match]
    assert passage["file"] == f"r0/clips/job/{with_lineage.id}.wav"
    assert client.get(passage["audio_url"]).content == (run / "clips" / "job" / f"{with_lineage.id}.wav").read_bytes()
    assert client.get(passage["waveform_url"]).json()["duration"] == pytest.approx(3.0)
    cur = next(i for i in items if i["kind"] == "region" and i["id"] == other.id)
    assert (cur["source"], cur["in_s"], cur["out_s"]) == ("curation", 0.0, 1.25)
    assert not any(i["id"] in {r.id for r in dropped} for i in items)

    everything = client.get("/api/keepers?all=1").json()["keepers"]
    assert {i["id"] for i in everything if i["kind"] == "clip"} == {r.id for r in records}
    assert client.get("/api/keepers?folder=c9").status_code == 404


# ---- saving from the timeline ------------------------------------------------------------------


def _three_passages(client) -> dict:
    items = [i for i in client.get("/api/keepers?all=1").json()["keepers"] if i["kind"] == "clip"][:3]
    parts = [{"file": i["file"], "in_s": 0.5, "out_s": 2.5, "gain_db": -1.0, "crossfade_s": 0.5} for i in items]
    parts[-1]["crossfade_s"] = 0.0
    return {"arrangement": {"noise_reduction": "off", "lufs": -18.0, "part": parts}}


def test_a_piece_saved_from_json_is_the_toml_compose_renders(client, run, tmp_path):
    body = _three_passages(client)
    r = client.put("/api/pieces/r0/pieces/first.toml", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    saved = run / "pieces" / "first.toml"
    arr = arrangement.read_arrangement(saved)
    assert arr.clips_dir == "../clips/job"
    ids = [Path(p["file"]).stem for p in body["arrangement"]["part"]]
    assert [p.clip for p in arr.parts] == ids  # ids, found in clips_dir
    assert [(p.in_s, p.out_s, p.gain_db, p.crossfade_s) for p in arr.parts] == [
        (0.5, 2.5, -1.0, 0.5), (0.5, 2.5, -1.0, 0.5), (0.5, 2.5, -1.0, 0.0)]
    piece = r.json()
    assert piece["root"] == "r0" and piece["path"] == "pieces/first.toml" and piece["run"] == "r0"
    assert piece["seconds"] == pytest.approx(3 * 2.0 - 2 * 0.5)
    assert piece["problem"] is None and piece["toml"] == saved.read_text()
    assert [p["id"] for p in piece["parts"]] == ids
    listed = client.get("/api/pieces").json()
    assert [(p["path"], p["parts"], p["error"]) for p in listed["pieces"]] == [("pieces/first.toml", 3, None)]
    assert listed["targets"] == [{"root": "r0", "folder": "pieces", "run": "r0", "where": "run/pieces/"}]
    assert _render(saved, tmp_path / "p.wav").shape[0] == pytest.approx(5.0 * 16000, abs=2)


def test_saving_never_replaces_a_piece_without_being_asked(client, run):
    body = _three_passages(client)
    assert client.put("/api/pieces/r0/pieces/p.toml", json=body, headers=AUTH).status_code == 200
    before = (run / "pieces" / "p.toml").read_text()
    body["arrangement"]["lufs"] = -23.0
    again = client.put("/api/pieces/r0/pieces/p.toml", json=body, headers=AUTH)
    assert again.status_code == 409 and "exists: overwrite it?" in again.json()["error"]
    assert (run / "pieces" / "p.toml").read_text() == before
    assert client.put("/api/pieces/r0/pieces/p.toml?overwrite=1", json=body, headers=AUTH).status_code == 200
    assert arrangement.read_arrangement(run / "pieces" / "p.toml").lufs == -23.0
    assert client.put("/api/pieces/r0/pieces/q.toml", json={**body, "overwrite": True}, headers=AUTH).status_code == 200
    (run / "pieces" / "pyproject.toml").write_text('[project]\nname = "mine"\n')
    refused = client.put("/api/pieces/r0/pieces/pyproject.toml?overwrite=1", json=body, headers=AUTH)
    assert refused.status_code == 409 and "not an arrangement" in refused.json()["error"]
    assert "mine" in (run / "pieces" / "pyproject.toml").read_text()
    assert sorted(p.name for p in (run / "pieces").iterdir()) == ["p.toml", "pyproject.toml", "q.toml"]  # no leftovers


@pytest.mark.parametrize(
    "change, status, field, part, words",
    [
        (lambda ps: ps[0].update(crossfade_s=2.5), 400, "crossfade_s", 0, "longer than the next part"),
        (lambda ps: ps[1].update(crossfade_s=1.6), 400, "crossfade_s", 1, "overlap: together longer than the part"),
        (lambda ps: (ps[1].pop("file"), ps[1].update(clip="no-such-clip")), 400, "clip", 1, "no clip 'no-such-clip'"),
        (lambda ps: ps[2].update(file="r0/clips/job/gone.wav"), 400, None, None, "not a file in the opened folders"),
        (lambda ps: ps[0].update(out_s=9.0), 400, "out_s", 0, "beyond the clip's end (3.000 s)"),
        (lambda ps: ps[0].update(gain_db="loud"), 400, "gain_db", 0, "expected a number"),
        (lambda ps: ps[2].update(crossfade_s=0.5), 400, "crossfade_s", 2, "the last part has nothing to fade into"),
        (lambda ps: ps[0].update(colour="red"), 400, "colour", 0, "unknown field"),
        (lambda ps: ps.clear(), 400, "part", None, "needs at least one part"),
    ],
)
def test_a_wrong_arrangement_is_refused_naming_the_part_and_field(client, run, change, status, field, part, words):
    body = _three_passages(client)
    change(body["arrangement"]["part"])
    r = client.put("/api/pieces/r0/pieces/bad.toml", json=body, headers=AUTH)
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and (r.json()["field"], r.json()["part"]) == (field, part)
    if part is not None:
        assert f"part {part + 1} (" in r.json()["error"]  # compose's own message
    assert not (run / "pieces" / "bad.toml").exists()


def test_the_toml_for_a_render_is_placed_in_run_pieces_before_it_exists(client, run):
    body = _three_passages(client)
    r = client.post("/api/pieces/toml", json={**body, "at": "r0/pieces/new.toml"}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert not (run / "pieces").exists()  # nothing written
    arr = arrangement.parse_text(r.json()["toml"], base_dir=str(run / "pieces"))
    assert arr.clips_dir == "../clips/job" and len(arr.parts) == 3
    assert r.json()["arrangement"] == arrangement.to_dict(arr)
    bad = client.post("/api/pieces/toml", json={**body, "at": "r0/elsewhere/new.toml"}, headers=AUTH)
    assert bad.status_code == 404
    assert client.post("/api/pieces/toml", json={**body, "at": "r0/pieces/new.toml"}).status_code == 401


# ---- a hand-written piece: one format, two editors -------------------------------------------------


def test_a_hand_written_piece_opens_and_saved_back_renders_identically(client, run, tmp_path):
    path, ids = _hand_written(run)
    listed = client.get("/api/pieces").json()["pieces"]
    assert [(p["path"], p["parts"], p["error"]) for p in listed] == [("pieces/by-hand.toml", 3, None)]
    piece = client.get("/api/pieces/r0/pieces/by-hand.toml").json()
    assert piece["toml"] == path.read_text()
    assert [p["id"] for p in piece["parts"]] == ids
    assert piece["arrangement"]["part"][1] == {"clip": f"../clips/job/{ids[1]}.wav", "in_s": 0.5, "gain_db": 0.0,
                                               "crossfade_s": 0.3333333}  # no out_s: to the clip's end
    assert piece["header"] == "Written by hand: three stretches of the job's clips.\n(a second line of header)"
    assert piece["notes"] == ["the opening: quiet", "", "ends on the third"]
    assert piece["clips_dir_at"] == "r0/clips/job" and piece["sample_rate"] == 16000
    lineage = {r.id: r.curation["lineage"]["matches"] for r in _records(run)}
    assert [p["lineage"] for p in piece["parts"]] == [lineage[i] for i in ids]

    # Saved back unchanged, in place and in another folder: the same arrangement, the same sound.
    body = _as_the_page_sends(piece)
    again = client.put("/api/pieces/r0/pieces/by-hand.toml?overwrite=1", json=body, headers=AUTH)
    assert again.status_code == 200, again.text
    moved = client.put("/api/pieces/r0/moved.toml", json=body, headers=AUTH)
    assert moved.status_code == 200, moved.text
    original = arrangement.parse_text(HAND_WRITTEN.format(a=ids[0], b=ids[1], c=ids[2]),
                                             base_dir=str(run / "pieces"))
    for saved in (path, run / "moved.toml"):
        arr = arrangement.read_arrangement(saved)
        assert [replace(p, clip="") for p in arr.parts] == [replace(p, clip="") for p in original.parts]
        assert master.clip_paths(arr) == master.clip_paths(original)
    assert arrangement.read_arrangement(path).parts == original.parts  # its own references kept
    assert arrangement.read_arrangement(run / "moved.toml").clips_dir == "clips/job"
    text = path.read_text()
    assert text.startswith("# Written by hand") and "# the opening: quiet\n[[part]]" in text
    (tmp_path / "orig").mkdir()
    (tmp_path / "orig" / "by-hand.toml").write_text(HAND_WRITTEN.format(a=ids[0], b=ids[1], c=ids[2]))
    (tmp_path / "clips").symlink_to(run / "clips")  # the original's ../clips/job, from a copy
    reference = _render(tmp_path / "orig" / "by-hand.toml", tmp_path / "orig.wav")
    assert np.array_equal(_render(path, tmp_path / "a.wav"), reference)
    assert np.array_equal(_render(run / "moved.toml", tmp_path / "b.wav"), reference)


def test_toml_text_is_saved_as_written_once_it_checks(client, run):
    path, ids = _hand_written(run)
    text = path.read_text().replace("gain_db = 2", "gain_db = 3  # louder")
    r = client.put("/api/pieces/r0/pieces/typed.toml", content=text.encode(), headers={
        **AUTH, "Content-Type": "application/toml"})
    assert r.status_code == 200, r.text
    assert (run / "pieces" / "typed.toml").read_text() == text
    broken = client.put("/api/pieces/r0/pieces/broken.toml", content=b"[[part]\n", headers={
        **AUTH, "Content-Type": "application/toml"})
    assert broken.status_code == 400 and "not valid TOML" in broken.json()["error"]
    wrong = text.replace("crossfade_s = 0.4", "crossfade_s = 4.0")
    r = client.put("/api/pieces/r0/pieces/wrong.toml", content=wrong.encode(), headers={
        **AUTH, "Content-Type": "application/toml"})
    assert r.status_code == 400 and r.json()["field"] == "crossfade_s" and r.json()["part"] == 0
    assert "wrong.toml:16: part 1" in r.json()["error"]  # the line, as compose says it


def test_a_piece_with_a_problem_still_opens_and_says_what_compose_would_refuse(client, run):
    path, ids = _hand_written(run)
    text = path.read_text()
    path.write_text(text.replace(f'clip = "{ids[2]}"', 'clip = "gone"'))
    piece = client.get("/api/pieces/r0/pieces/by-hand.toml").json()
    assert "no clip 'gone'" in piece["parts"][2]["error"] and piece["parts"][0]["id"] == ids[0]
    assert piece["problem"]["field"] == "clip" and piece["problem"]["part"] == 2
    listed = client.get("/api/pieces").json()["pieces"][0]
    assert "no clip 'gone'" in listed["error"]
    path.write_text(text.replace("lufs = -20", 'lufs = "loud"'))
    r = client.get("/api/pieces/r0/pieces/by-hand.toml")
    assert r.status_code == 422 and r.json()["field"] == "lufs" and "by-hand.toml:6: lufs" in r.json()["error"]


def test_a_rendered_piece_lists_its_files(client, run):
    path, _ = _hand_written(run)
    assert main(["compose", str(path), "--out", str(run / "pieces" / "by-hand.wav"),
                 "--stems", str(run / "pieces" / "by-hand-stems")]) == 0
    rendered = client.get("/api/pieces/r0/pieces/by-hand.toml").json()["rendered"]
    assert rendered["audio_url"] == "/files/r0/pieces/by-hand.wav"
    assert rendered["labels_url"] == "/files/r0/pieces/by-hand.labels.txt"
    assert len(rendered["stems"]) == 3 and client.get(rendered["stems"][0]).status_code == 200
    assert rendered["loudness"]["integrated_lufs"] == pytest.approx(-20.0, abs=0.2)


# ---- the guard -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path, status", [
    ("/api/pieces/r0/../x.toml", 404), ("/api/pieces/r0/pieces/x.txt", 400), ("/api/pieces/r9/pieces/x.toml", 404),
    ("/api/pieces/r0/nowhere/deep/x.toml", 404), ("/api/pieces/r0/pieces/%2e%2e/x.toml", 400),
])
def test_pieces_are_written_only_inside_the_opened_folders(client, run, path, status):
    body = _three_passages(client)
    assert client.put(path, json=body, headers=AUTH).status_code == status
    assert not (run.parent / "x.toml").exists() and not (run / "x.txt").exists()


def test_saving_needs_the_token(client, run):
    body = _three_passages(client)
    assert client.put("/api/pieces/r0/pieces/x.toml", json=body).status_code == 401
    cookie = client.get(f"/?token={TOKEN}")  # the page's cookie alone never writes
    assert cookie.status_code == 200
    assert client.put("/api/pieces/r0/pieces/x.toml", json=body).status_code == 401
    assert not (run / "pieces").exists()


# ---- the format's owner: the round trip and the checks ---------------------------------------------


def test_arrangement_dict_and_comments_round_trip():
    text = HAND_WRITTEN.format(a="a", b="b", c="c")
    arr = arrangement.parse_text(text)
    header, notes = arrangement.comments(text)
    again = arrangement.arrangement_toml(arrangement.from_dict(arrangement.to_dict(arr)), notes=notes, header=header)
    back = arrangement.parse_text(again)
    assert back.parts == arr.parts and arrangement.to_dict(back) == arrangement.to_dict(arr)
    assert arrangement.comments(again) == (header, notes)
    assert "crossfade_s = 0.3333333" in again  # digits written on purpose are kept
    noisy = arrangement.arrangement_toml(replace(arr, lufs=0.1 + 0.2 - 20.3))
    assert "lufs = -20.0\n" in noisy  # arithmetic's noise is not


def test_check_refuses_what_render_refuses_with_the_same_words(tmp_path):
    sf.write(str(tmp_path / "a.wav"), np.zeros(32000, np.float32) + 0.1, 16000)
    cases = [
        [arrangement.Part("a", 0.0, 1.0, crossfade_s=0.8), arrangement.Part("a", 0.0, 0.5)],
        [arrangement.Part("a", 2.5)],
        [arrangement.Part("a", 0.0, 3.0)],
        [arrangement.Part("nope")],
    ]
    for parts in cases:
        arr = arrangement.Arrangement(parts=tuple(parts), base_dir=str(tmp_path), noise_reduction="off")
        with pytest.raises(UserInputError) as by_render:
            master.render(arr)
        with pytest.raises(arrangement.ArrangementError) as by_check:
            master.check(arr)
        assert str(by_check.value) == str(by_render.value)
        assert by_check.value.part is not None and by_check.value.field in ("crossfade_s", "in_s", "out_s", "clip")
    fine = arrangement.Arrangement(parts=(arrangement.Part("a", 0.25, 1.0, crossfade_s=0.5), arrangement.Part("a")),
                                   base_dir=str(tmp_path))
    assert master.check(fine) == [12000, 32000]
    assert [len(x) for x in (master.render(replace(fine, noise_reduction="off"), with_stems=True).stems)] == [12000,
                                                                                                           32000]
