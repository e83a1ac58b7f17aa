"""The live panel in a real headless Chromium (autoplay allowed, sound muted): the engine plays a
tiny model for a few seconds through the page's AudioWorklet without an underrun, the knob
(keyboard and mouse) and a learned MIDI knob change the engine's temperature, Record makes a take
that `inspire generate --again` renders again exactly. The counters are the worklet's own,
read from the page. Needs Chromium and chromedriver, like tests/test_studio_browser.py."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from test_studio_browser import TOKEN, _Server, _wait, driver  # noqa: F401 - driver is a fixture
from test_studio_live import SR, make_live_run

pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402

PLAY_S = 3.0


@pytest.fixture
def live_studio(tmp_path):
    run = make_live_run(tmp_path)
    server = _Server([run])
    yield {"run": run, "base": server.base}
    server.stop()


def _ds(d, name):
    return d.execute_script(f"return document.getElementById('live-view').dataset.{name}")


def _num(d, name) -> float:
    v = _ds(d, name)
    return float(v) if v not in (None, "") else -1.0


def _wait_long(d, condition, message, seconds=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(d, seconds, poll_frequency=0.05).until(lambda _: condition(), message=message)


def test_live_panel_plays_without_underruns_and_the_knob_changes_the_temperature(driver, live_studio):  # noqa: F811
    from inspire import cli

    d, run = driver, live_studio["run"]
    d.delete_all_cookies()
    d.get(f"{live_studio['base']}/?token={TOKEN}#live")
    _wait(d, lambda: d.execute_script("return document.body.dataset.view") == "live", "the live view did not open")
    _wait(d, lambda: d.find_element(By.ID, "live-run").get_attribute("value") == "r0", "the run is not offered")
    assert len(d.find_elements(By.CSS_SELECTOR, "#live-pad-list tr")) == 2  # a pad per track, to start from

    d.find_element(By.ID, "live-start").click()
    _wait_long(d, lambda: _ds(d, "state") == "playing", "the engine did not start")
    _wait_long(d, lambda: _num(d, "played") >= PLAY_S * SR, f"the page did not play {PLAY_S} s")
    assert _num(d, "underruns") == 0, "the worklet ran dry while playing"
    assert _num(d, "gaps") == 0 and _num(d, "dropped") == 0  # frames in order, none thrown away
    assert "real time" in d.find_element(By.ID, "live-speed").text

    # The knob by keyboard: focused, five steps up from 1.00.
    knob = d.find_element(By.ID, "live-knob")
    knob.click()
    ActionChains(d).send_keys(Keys.ARROW_UP * 5).perform()
    assert float(knob.get_attribute("data-value")) == pytest.approx(1.05)
    _wait(d, lambda: _num(d, "temperature") == pytest.approx(1.05), "the engine's temperature did not follow the knob")

    # Record, then drag the knob up with the mouse while recording.
    d.find_element(By.ID, "live-record").click()
    _wait(d, lambda: "Recording" in d.find_element(By.ID, "live-record").text, "recording did not start")
    ActionChains(d).move_to_element(knob).click_and_hold().move_by_offset(0, -10).move_by_offset(0, -30) \
        .release().perform()
    dragged = float(knob.get_attribute("data-value"))
    assert dragged == pytest.approx(1.25, abs=0.011)  # 40 px of 200 px for the range 0.5-1.5
    _wait(d, lambda: _num(d, "temperature") == pytest.approx(dragged), "the drag did not reach the engine")

    # A MIDI controller's knob, learned: the next CC message maps it; its full turn is the range's top.
    d.find_element(By.ID, "live-midi-learn").click()
    d.execute_async_script("const done = arguments[0]; import('/static/live.js').then((m) => {"
                           " m.midiMessage([0xB3, 74, 10]); m.midiMessage([0xB3, 74, 127]);"
                           " m.midiMessage([0xB0, 74, 0]); done(); })")  # learn, turn; another channel: ignored
    assert "CC 74 ch 4" in d.find_element(By.ID, "live-midi-map").text
    _wait(d, lambda: _num(d, "temperature") == pytest.approx(1.5), "the MIDI knob did not set the temperature")
    recorded_from = _num(d, "played")
    _wait_long(d, lambda: _num(d, "played") >= recorded_from + SR, "the page stopped playing")

    d.find_element(By.ID, "live-start").click()  # stop: the take ends and is committed
    _wait_long(d, lambda: d.find_elements(By.CSS_SELECTOR, "#live-takes li[data-id]"), "no take was reported")
    _wait(d, lambda: _ds(d, "state") == "idle", "the panel did not stop")
    assert _num(d, "underruns") == 0
    take = d.find_element(By.CSS_SELECTOR, "#live-takes li[data-id]")
    take_id = take.get_attribute("data-id")
    assert f"--again {take_id}" in take.text and take.find_element(By.LINK_TEXT, "in the clips view")

    # The take: punched in while playing, the knob and MIDI moves at their samples, rendered again exactly.
    wav = run / "clips" / "takes" / f"{take_id}.wav"
    side = json.loads(wav.with_suffix(".json").read_text())
    perf = side["performance"]
    assert perf["start"] > 0 and perf["audio_device"] == "browser" and perf["underruns"] == 0
    temps = [e["temperature"] for e in perf["timeline"]["events"] if "temperature" in e]
    assert temps[0] == pytest.approx(1.05) and temps[-1] == pytest.approx(1.5) and dragged in temps
    assert cli.main(["generate", str(run), "--again", take_id, "--quiet"]) == 0
    again = run / "clips" / f"again-{take_id}-{side['samples'] / SR:g}s" / wav.name
    assert np.array_equal(sf.read(str(again), dtype="int16")[0], sf.read(str(wav), dtype="int16")[0])


def test_live_panel_without_the_token_says_so(driver, live_studio):  # noqa: F811
    d = driver
    d.delete_all_cookies()
    d.get(f"{live_studio['base']}/#live")
    _wait(d, lambda: d.execute_script("return document.body.dataset.view") == "live", "the live view did not open")
    assert "session token" in d.find_element(By.ID, "live-message").text
    assert not d.find_element(By.ID, "live-start").is_enabled()
