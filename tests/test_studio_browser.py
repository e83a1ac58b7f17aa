"""The studio in a real headless Chromium, driven the way a musician uses it: keyboard and mouse,
then the sidecars on disk are checked.

Needs Chromium and its driver (Debian/Ubuntu: `apt-get install chromium chromium-driver`) and
selenium (the test extra); without them these tests skip and say so. No browser is downloaded.
Every wait is an explicit wait for a condition; nothing sleeps and hopes.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from inspire import clips
from inspire.errors import UserInputError
from studio_data import make_clips, make_run

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "browser-test-token"
WAIT_S = 15


def _find_browser() -> tuple[str, str] | None:
    names = ("chromium", "chromium-browser", "google-chrome")
    browser = next((shutil.which(n) for n in names if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def driver():
    found = _find_browser()
    if found is None:
        pytest.skip("no headless Chromium found: install it with `apt-get install chromium chromium-driver` "
                    "(Debian/Ubuntu) to run the studio's browser tests")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    opts = Options()
    opts.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio", "--disable-gpu"):
        opts.add_argument(arg)
    try:
        d = webdriver.Chrome(service=Service(found[1]), options=opts)
    except WebDriverException as exc:
        pytest.skip(f"Chromium did not start ({str(exc).splitlines()[0]}); "
                    "`apt-get install chromium chromium-driver` installs a matching pair")
    yield d
    d.quit()


class _Server:
    """The studio app served by uvicorn on a free loopback port, in a thread of this process."""

    def __init__(self, paths):
        import uvicorn

        from inspire.studio.server import bind, create_app

        self.app = create_app(paths, token=TOKEN, cache_folder=None)
        self.sock = bind("127.0.0.1", 0)
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + WAIT_S
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the studio did not start")
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(WAIT_S)
        self.sock.close()


@pytest.fixture
def studio(tmp_path):
    run = make_run(tmp_path / "run", track_seconds=6.0)
    folder = run / "clips" / "job"
    ids = make_clips(folder, 8, run=run, seconds=3.0)
    server = _Server([run])
    yield {"run": run, "folder": folder, "ids": ids, "base": server.base}
    server.stop()


def _wait(d, condition, message):
    return WebDriverWait(d, WAIT_S, poll_frequency=0.05).until(lambda _: condition(), message=message)


def _wait_file(condition, message):
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            if condition():
                return
        except UserInputError:
            pass  # a sidecar being replaced this instant
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.05)


def _open(d, url, n):
    d.delete_all_cookies()
    d.get(url)
    _wait(d, lambda: d.execute_script("return document.body.dataset.clipsLoaded") == str(n), "the clips did not load")
    _wait(d, lambda: d.execute_script("const c = document.querySelector('.clip.current');"
                                      "return !!(c && c.querySelector('.wave canvas, .wave div'))"),
          "the first clip was not selected and drawn")


def _keys(d, *keys):
    ActionChains(d).send_keys(*keys).perform()


def _current(d) -> str:
    return d.execute_script("return document.querySelector('.clip.current').dataset.id")


def _marks(folder: Path, cid: str) -> clips.Marks:
    return clips.read(folder / f"{cid}.json").marks


def test_triage_three_clips_with_the_keyboard_and_mark_passages(driver, studio):
    d, folder, ids = driver, studio["folder"], studio["ids"]
    _open(d, f"{studio['base']}/?token={TOKEN}", len(ids))
    assert _current(d) == ids[0]
    assert "token" not in d.current_url  # kept by the page, not left in the address bar

    _keys(d, "p")                      # keep #1, advance
    _wait(d, lambda: _current(d) == ids[1], "keep did not advance to the next clip")
    _keys(d, "x")                      # discard #2, advance
    _wait(d, lambda: _current(d) == ids[2], "discard did not advance")
    _keys(d, "s", "j", "k", "p")       # star #3, next, back, keep #3 (advances to #4)
    _wait(d, lambda: _current(d) == ids[3], "keep did not advance")
    _keys(d, Keys.ARROW_UP)            # back to #3

    _wait_file(lambda: _marks(folder, ids[0]).verdict == "keep", "clip 1 was not kept on disk")
    _wait_file(lambda: _marks(folder, ids[1]).verdict == "discard", "clip 2 was not discarded on disk")
    _wait_file(lambda: _marks(folder, ids[2]) == clips.Marks("keep", True, ()), "clip 3 is not kept and starred")
    assert _marks(folder, ids[3]).empty
    badge = d.find_element(By.CSS_SELECTOR, f'.clip[data-id="{ids[1]}"] .badge.verdict').text
    assert badge == "discard · you"

    # A keeper passage dragged on the waveform of #3, from 70 % to 95 % of the clip.
    _wait(d, lambda: _current(d) == ids[2], "up did not go back")
    wave = d.find_element(By.CSS_SELECTOR, ".clip.current .wave")
    width = wave.size["width"]
    ActionChains(d).move_to_element_with_offset(wave, int(0.2 * width), -20).click_and_hold() \
        .move_by_offset(10, 0).move_by_offset(int(0.25 * width) - 10, 0).release().perform()
    _wait_file(lambda: len(_marks(folder, ids[2]).regions) == 1, "the dragged passage was not stored")
    dragged = _marks(folder, ids[2]).regions[0]
    assert dragged[0] == pytest.approx(2.1, abs=0.15) and dragged[1] == pytest.approx(2.85, abs=0.15)
    assert _marks(folder, ids[2]).verdict == "keep" and _marks(folder, ids[2]).star  # the rest is kept

    # Dragging the passage's middle moves it (and starts no second passage): 10 % to the left.
    ActionChains(d).move_to_element_with_offset(wave, int(0.325 * width), -20).click_and_hold() \
        .move_by_offset(-10, 0).move_by_offset(-int(0.1 * width) + 10, 0).release().perform()
    _wait_file(lambda: _marks(folder, ids[2]).regions != (dragged,), "the passage did not move")
    moved = _marks(folder, ids[2]).regions
    assert len(moved) == 1 and moved[0][1] - moved[0][0] == pytest.approx(dragged[1] - dragged[0], abs=0.02)
    assert moved[0][0] == pytest.approx(dragged[0] - 0.3, abs=0.1)
    dragged = moved[0]

    # And one by keyboard: [ at the start, seek 2 s, ].
    _keys(d, Keys.HOME, "[", Keys.ARROW_RIGHT, "]")
    _wait_file(lambda: _marks(folder, ids[2]).regions == ((0.0, 2.0), dragged), "the keyboard passage was not stored")

    # Delete removes the passage at the playhead (0 s: the keyboard one).
    _keys(d, Keys.HOME, Keys.DELETE)
    _wait_file(lambda: _marks(folder, ids[2]).regions == (dragged,), "delete did not remove the passage")


def test_play_advances_the_audio_and_lineage_plays_the_source_after(driver, studio):
    d, ids = driver, studio["ids"]
    _open(d, f"{studio['base']}/?token={TOKEN}", len(ids))
    time_of = "return document.querySelector('.clip.current .media audio').currentTime"
    _keys(d, " ")
    _wait(d, lambda: d.execute_script(time_of) > 0.3, "the clip did not play")
    _keys(d, " ")
    _wait(d, lambda: d.execute_script("return document.querySelector('.clip.current .media audio').paused"),
          "space did not pause")

    with_lineage = d.execute_script(
        "return [...document.querySelectorAll('.clip')].find(c => c.querySelector('.lineage-chip')).dataset.id")
    chip = d.find_element(By.CSS_SELECTOR, f'.clip[data-id="{with_lineage}"] .lineage-chip')
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", chip)
    chip.click()
    source = (f"const a = document.querySelector('.clip[data-id=\"{with_lineage}\"] > audio');"
              "return a ? a.currentTime : 0")
    _wait(d, lambda: d.execute_script(source) > 0.1, "the source passage did not play after the clip's moment")
    clip_time = d.execute_script(f"return document.querySelector('.clip[data-id=\"{with_lineage}\"] .media audio')"
                                 ".currentTime")
    record = clips.read(studio["folder"] / f"{with_lineage}.json")
    match = record.curation["lineage"]["matches"][0]
    assert clip_time == pytest.approx(match["clip_end_s"], abs=0.3)  # the clip's own moment played first


def test_without_the_token_the_page_is_read_only(driver, studio):
    d, folder, ids = driver, studio["folder"], studio["ids"]
    before = (folder / f"{ids[0]}.json").read_bytes()
    _open(d, f"{studio['base']}/", len(ids))  # loopback: reading works without the token
    _wait(d, lambda: d.find_element(By.ID, "banner").is_displayed(), "no read-only banner")
    _keys(d, "p")
    _wait(d, lambda: "read-only" in d.find_element(By.ID, "status").text, "no read-only message")
    assert (folder / f"{ids[0]}.json").read_bytes() == before


def test_clips_deleted_or_being_generated_show_as_such(driver, studio):
    import soundfile as sf

    from studio_data import tone

    d, folder, ids = driver, studio["folder"], studio["ids"]
    _open(d, f"{studio['base']}/?token={TOKEN}", len(ids))
    for suffix in (".wav", ".json"):
        (folder / f"{ids[0]}{suffix}").unlink()
    _keys(d, "s")  # marking a clip that is gone
    status = f"return document.querySelector('.clip[data-id=\"{ids[0]}\"]').dataset.status"
    _wait(d, lambda: d.execute_script(status) == "deleted", "the deleted clip is not shown as deleted")
    sf.write(str(folder / ".0100-new.partial.wav"), tone(0.5, 7), 16000)
    d.execute_script("document.dispatchEvent(new Event('visibilitychange'))")  # what a returning user triggers
    new = "const c = document.querySelector('.clip[data-id=\"0100-new\"]'); return c ? c.dataset.status : null"
    _wait(d, lambda: d.execute_script(new) == "generating", "the clip being generated is not listed as such")
    _keys(d, "j", "p")  # the page still works
    _wait_file(lambda: _marks(folder, ids[1]).verdict == "keep", "triage stopped working after a deletion")


def test_runs_view_auditions_previews_and_chooses_the_checkpoint(driver, studio):
    d, run = driver, studio["run"]
    d.delete_all_cookies()
    d.get(f"{studio['base']}/?token={TOKEN}#runs")
    _wait(d, lambda: d.execute_script("return document.body.dataset.view") == "runs", "the runs view did not open")
    row = d.find_element(By.CSS_SELECTOR, 'tr[data-checkpoint="step-00000200"]')
    row.find_element(By.CSS_SELECTOR, ".preview .play").click()
    playing = ("const a = document.querySelector('tr[data-checkpoint=\"step-00000200\"] .preview audio');"
               "return a ? a.currentTime : 0")
    _wait(d, lambda: d.execute_script(playing) > 0.2, "the preview did not play")
    row.find_element(By.CSS_SELECTOR, ".choose").click()
    _wait_file(lambda: (run / "studio.json").is_file() and '"step-00000200"' in (run / "studio.json").read_text(),
               "the chosen checkpoint was not stored in studio.json")
    _wait(d, lambda: "chosen" in row.get_attribute("class"), "the chosen row is not shown as chosen")
    assert "--checkpoint 200" in d.find_element(By.CSS_SELECTOR, ".chosen-line").text


def test_filters_and_sorting(driver, studio):
    from selenium.webdriver.support.ui import Select

    d, folder, ids = driver, studio["folder"], studio["ids"]
    _open(d, f"{studio['base']}/?token={TOKEN}", len(ids))
    records = {cid: clips.read(folder / f"{cid}.json") for cid in ids}
    shown = "return [...document.querySelectorAll('#clip-list .clip')].map(c => c.dataset.id)"

    def choose(select_id, value):
        Select(d.find_element(By.ID, select_id)).select_by_value(value)

    def typed(input_id, text):
        box = d.find_element(By.ID, input_id)
        box.clear()
        if text:
            box.send_keys(text)
        box.send_keys(Keys.ESCAPE)  # leave the field: the keys act on the clips again

    choose("f-verdict", "discard")
    discarded = [cid for cid in ids if records[cid].auto_verdict == "discard"]
    _wait(d, lambda: d.execute_script(shown) == discarded, "the verdict filter shows other clips")
    choose("f-verdict", "")
    typed("f-lmin", "1")
    with_lineage = [cid for cid in ids if records[cid].curation["lineage"]["matches"]]
    _wait(d, lambda: d.execute_script(shown) == with_lineage, "the lineage filter shows other clips")
    typed("f-lmin", "")
    typed("f-tmin", "1.0")
    warm = [cid for cid in ids if records[cid].temperature["spec"] in ("0.875:1.15", "0s:0.8,1s:1.2")]
    _wait(d, lambda: d.execute_script(shown) == warm, "the temperature filter (mean >= 1.0) shows other clips")
    typed("f-tmin", "")
    choose("f-sort", "id")
    _wait(d, lambda: d.execute_script(shown) == sorted(ids), "sorting by id failed")
    _keys(d, Keys.ESCAPE, "s")  # out of the sort menu, star the selected clip
    starred = _current(d)
    _wait_file(lambda: _marks(folder, starred).star, "the star was not stored")
    choose("f-marks", "star")
    _wait(d, lambda: d.execute_script(shown) == [starred], "the marks filter does not show the starred clip")


def test_a_collapsed_clip_shows_where_it_fell_into_noise_and_its_clean_stretch(driver, tmp_path):
    """Real curation of a clip that turns into white noise at 4 s: the clips view draws the noise
    from its onset and the clean stretch compose --auto uses, named on hover."""
    from conftest import melody
    from inspire.audio.quantize import dequantize, quantize
    from inspire.curate.curate import curate_folder

    folder = tmp_path / "clips"
    folder.mkdir()
    x = melody(8.0, 3)
    x[4 * 16000 :] = np.clip(0.25 * np.random.default_rng(5).standard_normal(x.size - 4 * 16000), -1, 1)
    x = dequantize(quantize(x, kind="mu-law", levels=256), kind="mu-law", levels=256)
    sf.write(str(folder / "fell.wav"), x, 16000, subtype="PCM_16")
    clips.write(clips.ClipRecord(id="fell", file="fell.wav", seconds=8.0, samples=x.size, sample_rate=16000,
                                 temperature={"spec": "0.875:1.15", "times_s": [0.0, 8.0], "values": [0.875, 1.15]}),
                folder)
    curate_folder(folder, progress=False)
    cur = clips.read(folder / "fell.json").curation
    onset = cur["features"]["collapse_s"]
    assert abs(onset - 4.0) <= 0.25 and cur["regions"]
    server = _Server([folder])
    try:
        _open(driver, f"{server.base}/?token={TOKEN}", 1)
        deep = ("const deep = (sel) => { const out = []; const walk = (root) => {"  # wavesurfer draws in a shadow root
                "  root.querySelectorAll(sel).forEach((e) => out.push(e));"
                "  root.querySelectorAll('*').forEach((e) => { if (e.shadowRoot) walk(e.shadowRoot); }); };"
                "  walk(document); return out; };")
        _wait(driver, lambda: driver.execute_script(deep + "return deep('.collapse-band').length === 1"),
              "the collapse was not drawn")
        band = driver.execute_script(
            deep + "const b = deep('.collapse-band')[0], w = b.parentElement.getBoundingClientRect();"
            "const r = b.getBoundingClientRect();"
            "return [b.title, (r.left - w.left) / w.width, (r.right - w.left) / w.width, deep('.clean-band').length];")
        temp = cur["features"]["collapse_temperature"]
        assert re.fullmatch(rf"collapsed into noise at 0:0{int(onset)}\.\d+ \(T {temp:.2f}\)", band[0]), band[0]
        assert band[1] == pytest.approx(onset / 8.0, abs=0.03) and band[2] == pytest.approx(1.0, abs=0.02)
        assert band[3] == len(cur["regions"])
        driver.save_screenshot(str(tmp_path / "collapse.png"))
    finally:
        server.stop()
