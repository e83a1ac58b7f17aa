"""The generate view in a real headless Chromium: a temperature curve drawn by dragging becomes the
schedule text `inspire generate` takes (and typed text redraws it), and a tiny generate job started
from the page runs to completion and its clips show in the clips view. Skips without Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from inspire import clips
from test_studio_browser import TOKEN, _Server, _wait, driver  # noqa: F401 (driver: a fixture)
from test_studio_jobs import _tiny_run

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402


@pytest.fixture
def studio(tmp_path):
    run = _tiny_run(tmp_path / "run")
    server = _Server([run])
    yield {"run": run, "base": server.base, "app": server.app}
    server.stop()
    server.app.state.jobs.shutdown()


def _open(d, studio):
    d.delete_all_cookies()
    d.get(f"{studio['base']}/?token={TOKEN}#generate")
    _wait(d, lambda: d.execute_script("return document.body.dataset.generateReady") == "1", "the view did not load")


def _spec(d, i=0) -> str:
    return d.find_elements(By.CSS_SELECTOR, ".curve-editor .spec")[i].get_attribute("value")


def _points(canvas) -> list:
    return json.loads(canvas.get_attribute("data-points"))


def _offset(canvas, t, v) -> tuple[int, int]:
    """Where (t seconds, temperature v) is drawn, as an offset from the canvas's centre (Selenium's origin)."""
    p = json.loads(canvas.get_attribute("data-plot"))
    x = p["l"] + t / p["t1"] * (p["w"] - p["l"] - p["r"])
    y = p["t"] + (1 - (v - p["lo"]) / (p["hi"] - p["lo"])) * (p["h"] - p["t"] - p["b"])
    return round(x - p["w"] / 2), round(y - p["h"] / 2)


def _run_job(d):
    """Press Generate, wait for the job's card to end, and return it (asserted done)."""
    d.find_element(By.ID, "g-start").click()
    _wait(d, lambda: d.execute_script("const j = document.querySelector('.job');"
                                      "return j && ['done', 'failed'].includes(j.dataset.state)"),
          "the job did not finish")
    job = d.find_element(By.CSS_SELECTOR, ".job")
    assert job.get_attribute("data-state") == "done", job.text
    return job


def _type(d, element, text):
    element.send_keys(Keys.CONTROL, "a")
    element.send_keys(Keys.DELETE)
    element.send_keys(text)


def test_dragging_the_curve_writes_the_schedule_and_typing_redraws_it(driver, studio):  # noqa: F811
    d = driver
    _open(d, studio)
    canvas = d.find_element(By.CSS_SELECTOR, ".curve-editor canvas")
    d.find_element(By.CSS_SELECTOR, ".curve-editor button[data-preset='0.875:1.15']").click()
    _wait(d, lambda: _points(canvas) == [[0, 0.875], [30, 1.15]], "the story's ramp was not drawn")
    assert _spec(d) == "0.875:1.15"

    # Drag the ramp's end up by about a fifth of a degree: the text follows, still a ramp.
    x, y = _offset(canvas, 30, 1.15)
    _, y_to = _offset(canvas, 30, 1.35)
    ActionChains(d).move_to_element_with_offset(canvas, x, y).click_and_hold() \
        .move_by_offset(0, (y_to - y) // 2).move_by_offset(0, y_to - y - (y_to - y) // 2).release().perform()
    _wait(d, lambda: _points(canvas)[1][1] != 1.15, "the drag did not move the point")
    m = re.fullmatch(r"0\.875:(\d+(?:\.\d+)?)", _spec(d))
    assert m, _spec(d)
    end = float(m.group(1))
    assert end == pytest.approx(1.35, abs=0.03) and _points(canvas) == [[0, 0.875], [30, end]]

    # A double-click adds a breakpoint where it lands (positions as fractions of the clip, like the ramp).
    x, y = _offset(canvas, 12, 1.3)
    ActionChains(d).move_to_element_with_offset(canvas, x, y).double_click().perform()
    _wait(d, lambda: len(_points(canvas)) == 3, "the double-click added no point")
    positions = [float(p.split(":")[0]) for p in _spec(d).split(",")]
    assert positions[0] == 0 and positions[1] == pytest.approx(0.4, abs=0.02) and positions[2] == 1
    assert not d.find_element(By.CSS_SELECTOR, ".curve-editor .spec-error").text  # the server took it

    # Typing redraws: breakpoints in seconds, one past the clip's end.
    spec = d.find_element(By.CSS_SELECTOR, ".curve-editor .spec")
    _type(d, spec, "0s:0.9,20s:1.1,45s:0.8")
    _wait(d, lambda: _points(canvas) == [[0, 0.9], [20, 1.1], [45, 0.8]], "typing did not redraw the curve")
    # A wrong one is shown next to the field in the command line's words, and nothing is redrawn.
    _type(d, spec, "0s:0.9,20s:1.1,10s:0.8")
    error = d.find_element(By.CSS_SELECTOR, ".curve-editor .spec-error")
    _wait(d, lambda: "must increase from left to right" in error.text, "no error next to the schedule")
    assert error.text == "temperature '0s:0.9,20s:1.1,10s:0.8': breakpoint positions must increase from left to right"
    assert _points(canvas) == [[0, 0.9], [20, 1.1], [45, 0.8]]


def test_a_tiny_generate_job_runs_from_the_page_and_its_clips_appear(driver, studio):  # noqa: F811
    d = driver
    _open(d, studio)
    for field, value in (("g-n", "0"), ("g-seconds", "0.5"), ("g-seed", "4")):
        _type(d, d.find_element(By.ID, field), value)
    d.find_element(By.ID, "g-start").click()
    n_error = d.find_element(By.CSS_SELECTOR, ".field-error[data-error-for='n']")
    _wait(d, lambda: n_error.text == "-n must be at least 1, got 0", "the refusal was not shown next to clips")
    assert d.execute_script("return document.querySelectorAll('.job').length") == 0

    _type(d, d.find_element(By.ID, "g-n"), "3")
    d.find_element(By.ID, "g-add-curve").click()  # a sweep of two curves
    _wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, ".curve-editor")) == 2, "no second curve")
    d.find_elements(By.CSS_SELECTOR, ".curve-editor button[data-preset='0.875:1.15']")[1].click()
    _wait(d, lambda: _spec(d, 1) == "0.875:1.15", "the preset did not apply")
    assert "clips 1, 3" in d.find_element(By.CSS_SELECTOR, ".curve-editor .clips-of").text

    # Prime: one second of track0 from where the waveform is clicked (60 % of its 4 s).
    d.find_element(By.CSS_SELECTOR, "input[name='g-prime'][value='track']").click()
    _type(d, d.find_element(By.ID, "g-prime-seconds"), "1")
    wave = d.find_element(By.ID, "g-track-wave")
    _wait(d, lambda: wave.get_attribute("data-track") == "track0", "the track was not drawn")
    ActionChains(d).move_to_element_with_offset(wave, int(0.1 * wave.size["width"]), 0).click().perform()
    _wait(d, lambda: float(wave.get_attribute("data-start")) > 2, "the click did not move the prime")
    start = float(wave.get_attribute("data-start"))
    assert start == pytest.approx(2.4, abs=0.2)
    job = _run_job(d)
    assert "3/3 clips" in job.text
    assert "--temperature 1.0 --temperature 0.875:1.15 --seed 4" in job.find_element(By.CLASS_NAME, "job-command").text

    job.find_element(By.CLASS_NAME, "show-clips").click()
    _wait(d, lambda: len(d.find_elements(By.CSS_SELECTOR, "#clip-list .clip")) == 3, "the clips did not show")
    folders = [p for p in (studio["run"] / "clips").iterdir() if p.is_dir()]
    assert len(folders) == 1
    records = clips.scan(folders[0])
    shown = {e.get_attribute("data-id") for e in d.find_elements(By.CSS_SELECTOR, "#clip-list .clip")}
    assert shown == {r.id for r in records}
    assert [r.temperature["spec"] for r in records] == ["1.0", "0.875:1.15", "1.0"]
    for r in records:
        assert r.prime["track"].startswith("track0-") and r.prime["seconds"] == 1.0
        assert r.prime["start_s"] == pytest.approx(start, abs=1e-3)
    assert Path(folders[0]).name in d.find_element(By.ID, "f-folder").text
