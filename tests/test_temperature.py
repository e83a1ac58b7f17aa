"""Temperature schedules: every form renders the right curve; bad specs are clear errors."""


import numpy as np
import pytest

from inspire import schedule as temp
from inspire.errors import UserInputError

SR = 1000


def test_constant():
    s = temp.parse("1.0")
    np.testing.assert_array_equal(s.curve(50, SR), np.full(50, 1.0, np.float32))
    assert temp.parse("0.5").curve(3, SR).tolist() == [0.5, 0.5, 0.5]


def test_ramp_runs_from_first_sample_to_last():
    c = temp.parse("0.875:1.15").curve(101, SR)
    assert c[0] == pytest.approx(0.875)
    assert c[-1] == pytest.approx(1.15)
    assert c[50] == pytest.approx((0.875 + 1.15) / 2)
    assert np.all(np.diff(c) > 0)


def test_breakpoints_at_fractions():
    c = temp.parse("0:0.75,0.5:1.1,1:0.75").curve(201, SR)
    assert c[0] == pytest.approx(0.75)
    assert c[100] == pytest.approx(1.1)
    assert c[200] == pytest.approx(0.75)
    assert c[50] == pytest.approx((0.75 + 1.1) / 2)
    # Before the first breakpoint and after the last the value holds.
    c2 = temp.parse("0.25:0.5,0.75:1.5").curve(101, SR)
    assert c2[:26].tolist() == pytest.approx([0.5] * 26)
    assert c2[75:].tolist() == pytest.approx([1.5] * 26)


def test_breakpoints_in_seconds_fit_any_length():
    s = temp.parse("0s:0.9,0.02s:1.1,0.045s:0.8")
    c = s.curve(100, SR)  # 0.1 s at 1 kHz: sample i is at i ms
    assert c[0] == pytest.approx(0.9)
    assert c[10] == pytest.approx(1.0)
    assert c[20] == pytest.approx(1.1)
    assert c[45] == pytest.approx(0.8)
    assert c[45:].tolist() == pytest.approx([0.8] * 55)  # held after the last point
    # A shorter clip is the same curve, cut.
    np.testing.assert_allclose(s.curve(30, SR), c[:30])


def test_resolved_form_reproduces_every_sample():
    cases = [("1.0", 10), ("0.875:1.15", 333), ("0:0.75,0.5:1.1,1:0.75", 1001), ("0s:0.9,0.1s:1.2,0.3s:0.8", 500)]
    for spec, n in cases:
        s = temp.parse(spec)
        r = s.resolved(n, SR)
        assert r["spec"] == spec
        assert len(r["times_s"]) == len(r["values"]) <= temp.MAX_POINTS
        assert r["times_s"][0] == 0.0 and r["times_s"][-1] == pytest.approx((n - 1) / SR)
        t = np.arange(n) / SR
        np.testing.assert_allclose(np.interp(t, r["times_s"], r["values"]), s.curve(n, SR), atol=1e-5)


def test_resolved_offset_shifts_times():
    r = temp.parse("1:2").resolved(11, 10, offset_s=0.5)
    assert r["times_s"] == [0.5, 1.5]
    assert r["values"] == [1.0, 2.0]


def test_sweep_spreads_clips_evenly_and_stably():
    specs = temp.parse_many(["0.9", "1.0", "0.875:1.15"])
    picked = [temp.for_clip(specs, i).spec for i in range(7)]
    assert picked == ["0.9", "1.0", "0.875:1.15", "0.9", "1.0", "0.875:1.15", "0.9"]


@pytest.mark.parametrize(
    "spec, words",
    [
        ("", "empty"),
        ("0", "> 0"),
        ("-1", "> 0"),
        ("0.9:0", "> 0"),
        ("abc", "not a number"),
        ("nan", "> 0"),
        ("inf", "> 0"),
        ("1:2:3", "ramp"),
        ("0:1,0.5", "breakpoint"),
        ("0:1,1.5:1", "beyond"),
        ("0.5:1,0.2:1", "increase"),
        ("0:1,2s:1", "mixes"),
        ("0s:1,-1s:1", ">= 0"),
        ("0:1,0.5:-2", "> 0"),
    ],
)
def test_bad_specs_are_clear_errors(spec, words):
    with pytest.raises(UserInputError) as e:
        temp.parse(spec)
    msg = str(e.value)
    assert words in msg and "\n" not in msg
