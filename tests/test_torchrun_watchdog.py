"""A stuck torchrun job is killed with every process's stacks in the error, ranks included
(they run in sessions of their own and would otherwise outlive the launcher); a hang can be
relaunched, and the relaunch is reported."""

import os
import sys

import pytest

from vla_stack.policy.torchrun import TorchrunHung, pids_with, run_torchrun

# a "launcher" that starts a "rank" in its own session sharing its output, then both wait forever
STUCK_JOB = """
import os, subprocess, sys, time
rank = "import pathlib, sys, time; pathlib.Path(sys.argv[1] + '.up').touch(); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", rank, sys.argv[1]], start_new_session=True)
while not os.path.exists(sys.argv[1] + ".up"):   # the rank's interpreter runs (its faulthandler is on)
    time.sleep(0.05)
print("rank started", flush=True)
time.sleep(600)
"""


def test_a_hung_job_is_killed_and_reports_where_each_process_stood(tmp_path):
    marker = str(tmp_path / "job")
    with pytest.raises(TorchrunHung) as hung:
        run_torchrun([sys.executable, "-c", STUCK_JOB, marker], dict(os.environ), timeout_s=6, marker=marker)
    report = str(hung.value)
    assert "attempt 1 of 1" in report and "rank started" in report
    assert report.count('File "<string>"') == 2   # the launcher's stack and the rank's
    assert pids_with(marker) == []   # nothing left running


def test_a_hang_is_relaunched_clean_and_reported_when_retries_are_allowed(tmp_path):
    flag, out = tmp_path / "hung_once", tmp_path / "run"
    job = f"""
import pathlib, sys, time
flag, out = pathlib.Path({str(flag)!r}), pathlib.Path({str(out)!r})
if not flag.exists():   # the first launch leaves a partial result behind and hangs
    out.mkdir(); (out / "partial").touch(); flag.touch(); time.sleep(600)
assert not (out / "partial").exists(), "the relaunch found the hung launch's files"
print("finished", sys.argv[1])
"""
    with pytest.warns(RuntimeWarning, match="attempt 1 of 2"):
        done = run_torchrun([sys.executable, "-c", job, str(tmp_path)], dict(os.environ), timeout_s=6,
                            marker=str(tmp_path), retries_after_hang=1, out_dir=out)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"finished {tmp_path}\n"
