"""The generate view's truncation, guard and steering in a real headless Chromium: label chips make
a morph whose weights are drawn on the canvas, typed specs redraw it, a wrong min-p is refused next
to its field in the command line's words, and a job started from the page with min-p and a steering
curve runs to completion with both in its clips' sidecars. Skips without Chromium."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from inspire import clips
from test_studio_browser import TOKEN, _Server, _wait, driver  # noqa: F401 (driver: a fixture)
from test_studio_controls import labelled_run
from test_studio_generate_browser import _run_job, _type

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed: pip install -e '.[test]'")
from selenium.webdriver.common.by import By  # noqa: E402

SHOTS = os.environ.get("INSPIRE_SCREENSHOTS")  # a folder to keep the screenshots in (to look at them)


@pytest.fixture
def studio(tmp_path):
    run = labelled_run(tmp_path)
    server = _Server([run])
    yield {"run": run, "base": server.base, "app": server.app}
    server.stop()
    server.app.state.jobs.shutdown()


def _series(canvas) -> dict:
    return {s["label"]: s["weights"] for s in json.loads(canvas.get_attribute("data-series") or "[]")}


def _pixel(d, canvas, t, weight):
    """The colour drawn at (t seconds, `weight` up the stack) as [r, g, b, a]."""
    return d.execute_script(
        "const c = arguments[0], p = JSON.parse(c.dataset.plot), dpr = c.width / p.w;"
        "const x = p.l + arguments[1] / p.t1 * (p.w - p.l - p.r), y = p.t + (1 - arguments[2]) * (p.h - p.t - p.b);"
        "return Array.from(c.getContext('2d').getImageData(Math.round(x * dpr), Math.round(y * dpr), 1, 1).data);",
        canvas, t, weight)


def test_steer_and_truncation_from_the_page(driver, studio, tmp_path):  # noqa: F811
    d = driver
    d.delete_all_cookies()
    d.get(f"{studio['base']}/?token={TOKEN}#generate")
    _wait(d, lambda: d.execute_script("return document.body.dataset.generateReady") == "1", "the view did not load")
    section = d.find_element(By.ID, "g-steer-section")
    _wait(d, section.is_displayed, "the Steer section is not shown for a labelled model")
    chips = [c.get_attribute("data-label") for c in section.find_elements(By.CSS_SELECTOR, ".chip")]
    assert chips == ["pads", "drums", "live, take 2", "none"]
    canvas = section.find_element(By.CSS_SELECTOR, "canvas.scurve")
    spec = section.find_element(By.CSS_SELECTOR, ".steer-editor .spec")

    # A chip is a constant label; a second one makes a morph from it, drawn as two stacked areas.
    section.find_element(By.CSS_SELECTOR, ".chip[data-label='pads']").click()
    _wait(d, lambda: _series(canvas) == {"pads": [1.0, 1.0]}, "the constant label was not drawn")
    section.find_element(By.CSS_SELECTOR, ".chip[data-label='drums']").click()
    _wait(d, lambda: _series(canvas) == {"pads": [1.0, 0.0], "drums": [0.0, 1.0]}, "the morph was not drawn")
    assert spec.get_attribute("value") == "pads:drums"
    legend = [e.text for e in section.find_elements(By.CSS_SELECTOR, ".legend-item")]
    assert legend == ["pads", "drums"]
    # Pixels: pads fills the bottom at the start, drums the bottom at the end, in two colours.
    start, end = _pixel(d, canvas, 0.5, 0.1), _pixel(d, canvas, 29.5, 0.1)
    assert start[3] > 0 and end[3] > 0 and start[:3] != end[:3]
    assert _pixel(d, canvas, 0.5, 0.9)[:3] == start[:3]  # all pads at the start

    # Typed breakpoints redraw it; a wrong label is refused in the command line's words.
    _type(d, spec, '0s:"live, take 2",10s:none')
    _wait(d, lambda: _series(canvas) == {"live, take 2": [1.0, 0.0, 0.0], "none": [0.0, 1.0, 1.0]},
          "typing did not redraw the steering")
    # Breakpoints past the clip's end: the axis reaches them (as the temperature curve's does).
    _type(d, spec, '0s:pads,10s:"live, take 2",20s:none,40s:drums')
    _wait(d, lambda: list(_series(canvas)) == ["pads", "live, take 2", "none", "drums"],
          "the breakpoints were not drawn")
    assert json.loads(canvas.get_attribute("data-plot"))["t1"] == pytest.approx(42)
    if SHOTS:
        d.save_screenshot(str(Path(SHOTS) / "steer-breakpoints.png"))
    _type(d, spec, "pads:bass")
    error = section.find_element(By.CSS_SELECTOR, ".steer-editor .spec-error")
    _wait(d, lambda: "unknown label 'bass'" in error.text, "no error next to the steering")
    assert error.text == ("steer 'pads:bass': unknown label 'bass'; the model knows: pads, drums, live, take 2 "
                          "(and none)")

    # A min-p out of range is refused next to its field as typed.
    min_p = d.find_element(By.CSS_SELECTOR, "#g-min-p .spec")
    _type(d, min_p, "1.5")
    min_error = d.find_element(By.CSS_SELECTOR, "#g-min-p .field-error")
    _wait(d, lambda: min_error.text == "min-p '1.5': min-p must be a number in [0, 1), got 1.5", "no min-p error")

    # The job: 2 clips of 0.5 s with a min-p ramp and the morph, guidance 1.5.
    _type(d, min_p, "0s:0,0.5s:0.1")
    _wait(d, lambda: not min_error.text, "the good min-p still shows an error")
    _type(d, spec, "pads:drums")
    _wait(d, lambda: not error.text and _series(canvas).get("drums") == [0.0, 1.0], "the morph was not redrawn")
    for field, value in (("g-n", "2"), ("g-seconds", "0.5"), ("g-seed", "3"), ("g-guidance", "1.5")):
        _type(d, d.find_element(By.ID, field), value)
    _wait(d, lambda: json.loads(canvas.get_attribute("data-plot"))["t1"] == 0.5, "the axis did not follow the length")
    if SHOTS:
        d.save_screenshot(str(Path(SHOTS) / "steer-form.png"))
    job = _run_job(d)
    assert "2/2 clips" in job.text and "steer pads:drums" in job.find_element(By.CLASS_NAME, "what").text
    assert job.find_element(By.CLASS_NAME, "job-command").text.endswith(
        "--temperature 1.0 --min-p 0s:0,0.5s:0.1 --steer pads:drums --guidance 1.5 --seed 3")
    if SHOTS:
        d.save_screenshot(str(Path(SHOTS) / "steer-job.png"))
    folders = [p for p in (studio["run"] / "clips").iterdir() if p.is_dir()]
    assert len(folders) == 1
    records = clips.scan(folders[0])
    assert len(records) == 2
    for r in records:
        assert r.min_p["spec"] == "0s:0,0.5s:0.1" and r.steer["spec"] == "pads:drums" and r.steer["guidance"] == 1.5
        assert r.steer["mixes"][0] == {"pads": 1.0} and r.steer["mixes"][-1] == {"drums": 1.0}
