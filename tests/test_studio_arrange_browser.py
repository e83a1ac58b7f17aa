"""The arranger in a real headless Chromium, used the way a musician uses it: keeper passages
dragged from the bin onto the timeline, a crossfade dragged, fields typed, saved, previewed and
rendered; then the files on disk are checked, and the piece.toml the page saved is rendered
again with `inspire compose` to the same samples.

Needs Chromium and chromedriver (see test_studio_browser.py); skips without them. Every wait is
for a condition.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inspire import clips
from inspire.cli import main
from inspire.compose import arrangement, master
from studio_data import make_clips, make_run
from test_studio_browser import TOKEN, WAIT_S, _Server, _wait, _wait_file
from test_studio_browser import driver as _chromium  # noqa: F401  (a fixture)

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

RENDER_WAIT_S = 180  # a render is a subprocess: python, noise reduction, loudness, 48 kHz
REGIONS = [(0.25, 2.25), (0.5, 2.75), (0.2, 2.6)]


@pytest.fixture
def driver(request):
    return request.getfixturevalue("_chromium")  # test_studio_browser's: one Chromium for the module


@pytest.fixture
def studio(tmp_path):
    run = make_run(tmp_path / "run", track_seconds=6.0)
    folder = run / "clips" / "job"
    ids = make_clips(folder, 6, run=run, seconds=3.0)
    kept = [cid for cid in ids if clips.read(folder / f"{cid}.json").auto_verdict == "keep"][:3]
    assert len(kept) == 3
    for cid, region in zip(kept, REGIONS, strict=True):
        clips.update(folder / f"{cid}.json", lambda r, region=region: replace(
            r, marks=clips.Marks(None, False, (region,))))
    server = _Server([run])
    yield {"run": run, "folder": folder, "kept": kept, "base": server.base}
    server.stop()


def _open(d, studio):
    d.delete_all_cookies()
    d.get(f"{studio['base']}/?token={TOKEN}#arrange")
    d.execute_script("localStorage.clear()")
    d.get(f"{studio['base']}/#arrange")  # the cookie keeps the session; a fresh page with no draft
    _wait(d, lambda: d.execute_script("return document.body.dataset.arrangeReady") == "1", "the arranger did not open")
    _wait(d, lambda: int(d.execute_script("return document.body.dataset.arrangeBin || 0")) >= 3,
          "the bin did not fill")


def _data(d, key):
    return d.execute_script(f"return document.body.dataset.{key}")


def _drag_to_end(d, item):
    """Drag a bin item onto the timeline, to the right of the parts already there."""
    view = d.find_element(By.ID, "a-scroll")  # the visible part of the timeline
    ActionChains(d).move_to_element(item).click_and_hold().move_by_offset(15, 5) \
        .move_to_element_with_offset(view, view.size["width"] // 2 - 40, 0).release().perform()


def _type(d, selector, text):
    box = d.find_element(By.CSS_SELECTOR, selector)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text, Keys.TAB)


def _region_item(d, cid):
    return d.find_element(By.CSS_SELECTOR, f'.bin-item[data-kind="region"][data-id="{cid}"]')


def test_arrange_three_passages_crossfade_save_preview_render(driver, studio, tmp_path):
    d, run, kept = driver, studio["run"], studio["kept"]
    _open(d, studio)
    for k, cid in enumerate(kept):
        _drag_to_end(d, _region_item(d, cid))
        _wait(d, lambda k=k: _data(d, "arrangeParts") == str(k + 1), f"passage {k + 1} was not placed")
    order = d.execute_script("return [...document.querySelectorAll('#a-lane .part')]"
                             ".sort((a, b) => a.dataset.index - b.dataset.index).map(p => p.dataset.clip)")
    assert order == kept

    # The first crossfade dragged out of its join: 20 px left at 40 px/s is half a second.
    pps = float(_data(d, "arrangePps"))
    assert pps == 40.0
    join = d.find_element(By.CSS_SELECTOR, '.join[data-index="0"]')
    ActionChains(d).move_to_element(join).click_and_hold().move_by_offset(-8, 0).move_by_offset(-12, 0) \
        .release().perform()
    _wait(d, lambda: "0.50 s" in d.find_element(By.CSS_SELECTOR, '.join[data-index="0"]').text,
          "the dragged crossfade is not half a second")
    # The second by its field, and a gain, on part 2 selected by a click.
    d.find_element(By.CSS_SELECTOR, '#a-lane .part[data-index="1"]').click()
    _type(d, '#a-inspector [name="crossfade_s"]', "0.3")
    _type(d, '#a-inspector [name="gain_db"]', "-2")
    _wait(d, lambda: "0.30 s" in d.find_element(By.CSS_SELECTOR, '.join[data-index="1"]').text,
          "the typed crossfade did not take")

    # Heard in the page: the preview lasts what the piece will.
    seconds = sum(b - a for a, b in REGIONS) - 0.5 - 0.3
    d.find_element(By.ID, "a-play").click()
    _wait(d, lambda: float(_data(d, "previewTime") or 0) > 0.2, "the preview did not play")
    assert float(_data(d, "previewSeconds")) == pytest.approx(seconds, abs=1e-3)
    d.find_element(By.ID, "a-play").click()
    _wait(d, lambda: _data(d, "previewPlaying") == "0", "the preview did not pause")

    # Saved as piece.toml: the passages, the crossfades and the gain.
    name = d.find_element(By.ID, "a-name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("first piece", Keys.TAB)
    d.find_element(By.ID, "a-save").click()
    toml = run / "pieces" / "first piece.toml"
    _wait_file(lambda: toml.is_file(), "the piece was not saved")
    arr = arrangement.read_arrangement(toml)
    assert [p.clip for p in arr.parts] == kept
    assert [(p.in_s, p.out_s) for p in arr.parts] == REGIONS
    assert [p.crossfade_s for p in arr.parts] == [0.5, 0.3, 0.0]
    assert [p.gain_db for p in arr.parts] == [0.0, -2.0, 0.0]

    # Rendered by compose as a job (48 kHz, 24-bit), offered for listening and download.
    d.find_element(By.ID, "a-render").click()
    WebDriverWait(d, RENDER_WAIT_S, poll_frequency=0.2).until(
        lambda _: _data(d, "arrangeJob") in ("done", "failed", "cancelled"), message="the render did not finish")
    job_error = d.find_element(By.CSS_SELECTOR, "#a-output .rj-error").text
    assert _data(d, "arrangeJob") == "done", job_error
    _wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "#a-output .rendered audio"), "the piece is not offered")
    links = [a.text for a in d.find_elements(By.CSS_SELECTOR, "#a-output .rendered .links a")]
    assert links[:3] == ["piece", "Audacity labels", "piece.json"]
    wav = run / "pieces" / "first piece.wav"
    piece = json.loads(wav.with_suffix(".json").read_text())
    assert piece["seconds"] == pytest.approx(seconds, abs=1e-3)
    audio, sr = sf.read(str(wav), dtype="float64")
    assert sr == 48000 and sf.info(str(wav)).subtype == "PCM_24"
    assert len(audio) == pytest.approx(seconds * 48000, abs=3)
    import pyloudnorm

    assert pyloudnorm.Meter(sr).integrated_loudness(audio) == pytest.approx(-14.0, abs=0.3)
    labels = wav.with_suffix(".labels.txt").read_text().splitlines()
    assert len(labels) == 3 and labels[1].split("\t")[0] == f"{(2.0 - 0.5):.6f}"

    # The piece.toml beside it renders the same samples with the command line.
    assert main(["compose", str(toml), "--out", str(tmp_path / "again.wav"), "--sample-rate", "48000",
                 "--bit-depth", "24"]) == 0
    again, _ = sf.read(str(tmp_path / "again.wav"), dtype="int32")
    rendered, _ = sf.read(str(wav), dtype="int32")
    assert np.array_equal(again, rendered)


def test_the_preview_is_mixed_as_compose_renders(driver, studio, tmp_path):
    d, kept = driver, studio["kept"]
    _open(d, studio)
    folder = studio["folder"]
    parts = (arrangement.Part(kept[0], 0.25, 2.25, -1.0, 0.6), arrangement.Part(kept[1], 0.5, 2.75, 2.0, 0.0),
             arrangement.Part(kept[2], 0.2, None, 0.0, 0.0))
    arr = arrangement.Arrangement(parts=parts, clips_dir=str(folder), noise_reduction="off", lufs=-20.0,
                                  fade_in_s=0.3, fade_out_s=0.7, base_dir=str(tmp_path))
    rendered = master.render(arr)
    assert rendered.loudness["limiter_max_reduction_db"] == 0.0  # the limiters differ; this one stays idle
    js_parts = [{"url": f"/files/r0/clips/job/{p.clip}.wav", "in_s": p.in_s, "out_s": p.out_s, "gain_db": p.gain_db,
                 "crossfade_s": p.crossfade_s} for p in parts]
    top = {"fade_in_s": 0.3, "fade_out_s": 0.7, "lufs": -20.0, "true_peak": -1.0}
    d.set_script_timeout(WAIT_S)
    got = d.execute_async_script("""
        const [parts, top, done] = arguments;
        import('/static/preview.js').then((m) => m.build(parts, top, 16000))
          .then((r) => done({audio: Array.from(r.audio), starts: r.starts, measured: r.measured}))
          .catch((e) => done({error: String(e)}));""", js_parts, top)
    assert "error" not in got, got.get("error")
    audio = np.array(got["audio"])
    assert len(audio) == len(rendered.mix)
    assert got["starts"] == pytest.approx([s / 16000 for s in rendered.starts])
    assert np.max(np.abs(audio - rendered.mix)) < 1e-5  # float32 apart: the same crossfades, fades and gain
    import pyloudnorm

    assert pyloudnorm.Meter(16000).integrated_loudness(audio) == pytest.approx(-20.0, abs=0.01)

    # A renderer's refusal, in its words: a crossfade longer than the next part.
    bad = [dict(js_parts[0], crossfade_s=2.5), *js_parts[1:]]
    err = d.execute_async_script("""
        const [parts, top, done] = arguments;
        import('/static/preview.js').then((m) => m.build(parts, top, 16000)).then(() => done('built'))
          .catch((e) => done(e.message));""", bad, top)
    assert err == "part 1: crossfade_s: 2.5 s is longer than the next part (2.250 s)"


HAND = """\
# by hand
clips_dir = "../clips/job"
noise_reduction = "off"

[[part]]
clip = "{a}"
in_s = 0.25
out_s = 2.25
crossfade_s = 0.4

# the middle
[[part]]
clip = "{b}"
in_s = 0.5
out_s = 2.5

[[part]]
clip = "{c}"
out_s = 2.0
"""


def test_a_hand_written_piece_opens_is_edited_and_saved_without_surprises(driver, studio):
    d, run, kept = driver, studio["run"], studio["kept"]
    (run / "pieces").mkdir()
    hand = run / "pieces" / "hand.toml"
    hand.write_text(HAND.format(a=kept[0], b=kept[1], c=kept[2]))
    (run / "pieces" / "taken.toml").write_text(HAND.format(a=kept[2], b=kept[1], c=kept[0]))
    _open(d, studio)
    from selenium.webdriver.support.ui import Select

    Select(d.find_element(By.ID, "a-open")).select_by_value("r0/pieces/hand.toml")
    _wait(d, lambda: _data(d, "arrangeOpened") == "pieces/hand.toml", "the hand-written piece did not open")
    shown = d.execute_script("return [...document.querySelectorAll('#a-lane .part')]"
                             ".sort((a, b) => a.dataset.index - b.dataset.index).map(p => p.dataset.clip)")
    assert shown == kept
    assert "0.40 s" in d.find_element(By.CSS_SELECTOR, '.join[data-index="0"]').text
    records = {cid: clips.read(studio["folder"] / f"{cid}.json") for cid in kept}
    with_lineage = [i for i, cid in enumerate(kept) if records[cid].curation["lineage"]["matches"]]
    for i in with_lineage:  # lineage on the timeline: each part names the track it echoes
        track = records[kept[i]].curation["lineage"]["matches"][0]["track"]
        part = d.find_element(By.CSS_SELECTOR, f'#a-lane .part[data-index="{i}"]')
        assert track in part.get_attribute("data-echoes").split(",") or not part.get_attribute("data-echoes")

    # Saved unchanged under its own name: the same arrangement, its comments kept.
    d.find_element(By.ID, "a-save").click()
    _wait(d, lambda: _data(d, "arrangeSaved") == "pieces/hand.toml", "the piece was not saved back")
    assert arrangement.read_arrangement(hand).parts == arrangement.parse_text(
        HAND.format(a=kept[0], b=kept[1], c=kept[2]), base_dir=str(run / "pieces")).parts
    assert "# the middle\n[[part]]" in hand.read_text()
    # Changed on disk meanwhile (a text editor): saving over it asks first.
    hand.write_text(hand.read_text() + "# edited elsewhere\n")
    d.find_element(By.ID, "a-save").click()
    _wait(d, lambda: d.find_element(By.ID, "a-ask").is_displayed(), "no question before replacing a changed file")
    assert "changed on disk" in d.find_element(By.ID, "a-ask").text
    d.find_element(By.CSS_SELECTOR, "#a-ask .no").click()
    assert hand.read_text().endswith("# edited elsewhere\n")

    # Trim the end of part 3 by dragging its right edge 40 px left.
    pps = float(_data(d, "arrangePps"))
    part = d.find_element(By.CSS_SELECTOR, '#a-lane .part[data-index="2"]')
    ActionChains(d).move_to_element_with_offset(part, part.size["width"] // 2 - 2, 0).click_and_hold() \
        .move_by_offset(-10, 0).move_by_offset(-30, 0).release().perform()
    out_s = '#a-inspector [name="out_s"]'
    _wait(d, lambda: abs(float(d.find_element(By.CSS_SELECTOR, out_s).get_attribute("value")) - (2.0 - 40 / pps))
          < 0.002, "the trim did not take")
    # Move part 1 to the end by dragging its body, delete the (new) first part with the key.
    first = d.find_element(By.CSS_SELECTOR, '#a-lane .part[data-index="0"]')
    view = d.find_element(By.ID, "a-scroll")
    ActionChains(d).move_to_element(first).click_and_hold().move_by_offset(10, 0) \
        .move_to_element_with_offset(view, view.size["width"] // 2 - 30, 0).release().perform()
    moved = "return [...document.querySelectorAll('#a-lane .part')].sort((a, b) => a.dataset.index - b.dataset.index)" \
            ".map(p => p.dataset.clip)"
    _wait(d, lambda: d.execute_script(moved) == [kept[1], kept[2], kept[0]], "the part did not move to the end")
    d.find_element(By.CSS_SELECTOR, '#a-lane .part[data-index="0"]').click()
    ActionChains(d).send_keys(Keys.DELETE).perform()
    _wait(d, lambda: d.execute_script(moved) == [kept[2], kept[0]], "Delete did not remove the part")
    ActionChains(d).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    _wait(d, lambda: d.execute_script(moved) == [kept[1], kept[2], kept[0]], "Ctrl+Z did not bring the part back")
    ActionChains(d).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("z").key_up(Keys.SHIFT) \
        .key_up(Keys.CONTROL).perform()
    _wait(d, lambda: d.execute_script(moved) == [kept[2], kept[0]], "Ctrl+Shift+Z did not remove it again")

    # Saved as a name that is taken: asked first; cancelling writes nothing, replacing writes.
    before = (run / "pieces" / "taken.toml").read_text()
    name = d.find_element(By.ID, "a-name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("taken", Keys.TAB)
    d.find_element(By.ID, "a-save").click()
    _wait(d, lambda: d.find_element(By.ID, "a-ask").is_displayed(), "no question before replacing a piece")
    assert "taken.toml exists" in d.find_element(By.ID, "a-ask").text
    d.find_element(By.CSS_SELECTOR, "#a-ask .no").click()
    time.sleep(0.3)  # nothing should happen; a later check would not see a write that never comes
    assert (run / "pieces" / "taken.toml").read_text() == before
    d.find_element(By.ID, "a-save").click()
    _wait(d, lambda: d.find_element(By.ID, "a-ask").is_displayed(), "no question the second time")
    d.find_element(By.CSS_SELECTOR, "#a-ask .yes").click()
    _wait_file(lambda: [p.clip for p in arrangement.read_arrangement(run / "pieces" / "taken.toml").parts]
               == [kept[2], kept[0]], "replacing did not write the piece")
    assert hand.read_text().count("[[part]]") == 3  # the opened file is left as it was


def test_a_crossfade_the_renderer_would_refuse_is_shown_at_its_field(driver, studio):
    d, run, kept = driver, studio["run"], studio["kept"]
    _open(d, studio)
    for k, cid in enumerate(kept[:2]):
        _drag_to_end(d, _region_item(d, cid))
        _wait(d, lambda k=k: _data(d, "arrangeParts") == str(k + 1), "the passage was not placed")
    d.find_element(By.CSS_SELECTOR, '#a-lane .part[data-index="0"]').click()
    _type(d, '#a-inspector [name="crossfade_s"]', "2.4")
    _wait(d, lambda: "longer than the next part" in d.find_element(By.ID, "a-problem").text,
          "the refusal is not shown")
    field = d.find_element(By.CSS_SELECTOR, '#a-inspector [name="crossfade_s"]')
    assert "invalid" in field.get_attribute("class")
    assert "longer than the next part" in d.find_element(By.CSS_SELECTOR, "#a-inspector .field-error").text
    d.find_element(By.ID, "a-save").click()
    _wait(d, lambda: "longer than the next part" in d.find_element(By.ID, "status").text,
          "the server's refusal is not said")
    assert "crossfade_s" in d.find_element(By.ID, "status").text
    assert not list(Path(run).glob("pieces/*.toml"))
