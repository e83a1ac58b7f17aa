"""The one time formatter: what the prepare table, the lineage timeline and the report show."""

import pytest

from inspire.timefmt import clock


@pytest.mark.parametrize("seconds, decimals, text", [
    (0, 0, "0:00"), (7.4, 0, "0:07"), (59.6, 0, "1:00"), (187, 0, "3:07"), (3600, 0, "60:00"),
    (42.46, 1, "0:42.5"), (59.97, 1, "1:00.0"), (61.04, 1, "1:01.0"),
    (723.25, 2, "12:03.25"), (59.996, 2, "1:00.00"), (5.5, 2, "0:05.50"), (-1.0, 2, "0:00.00"),
])
def test_clock(seconds, decimals, text):
    assert clock(seconds, decimals=decimals) == text
