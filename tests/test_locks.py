"""The folder lock: a second job is refused with the holder named; a killed holder's lock is taken over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from inspire.errors import BusyError
from inspire.locks import holder, job_lock

HOLD = (
    "import sys, time\n"
    "from inspire.locks import job_lock\n"
    "with job_lock(sys.argv[1], 'trained'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def _hold_in_child(folder):
    child = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "held"
    return child


def test_second_job_is_refused_naming_the_holder(tmp_path):
    child = _hold_in_child(tmp_path)
    try:
        with pytest.raises(BusyError, match=rf"being trained by pid {child.pid} since"):
            with job_lock(tmp_path, "trained"):
                pass
    finally:
        child.kill()
        child.wait()


def test_killed_holder_is_taken_over(tmp_path, capsys):
    child = _hold_in_child(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert holder(tmp_path)["pid"] == child.pid  # the stale record is still there
    with job_lock(tmp_path, "trained"):
        assert holder(tmp_path)["pid"] == os.getpid()
    assert f"pid {child.pid}" in capsys.readouterr().err


def test_named_locks_are_independent_and_released(tmp_path):
    with job_lock(tmp_path, "generated into", name="shard-0-of-2"):
        with job_lock(tmp_path, "generated into", name="shard-1-of-2"):
            pass
        with pytest.raises(BusyError):
            with job_lock(tmp_path, "generated into", name="shard-0-of-2"):
                pass
    with job_lock(tmp_path, "generated into", name="shard-0-of-2"):
        pass


def test_a_file_is_not_a_folder(tmp_path):
    f = tmp_path / "run"
    f.write_text("x")
    with pytest.raises(Exception, match="not a folder"):
        with job_lock(f, "trained"):
            pass
