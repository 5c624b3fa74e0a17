"""Launch a torchrun job under a watchdog.

A stuck job must say where it stood: torchrun starts every rank in a session of its own, so
killing the launcher leaves the ranks running (and holding our output pipe). On a time-out
every process of the job (found by a marker in its command line, e.g. its --out folder)
gets SIGABRT; with PYTHONFAULTHANDLER set, each prints all its threads' Python stacks
before it dies, into the output returned with the error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path


class TorchrunHung(RuntimeError):
    """The job outlived its time-out; the message holds its output and every process's stacks."""


def run_torchrun(cmd: list[str], env: dict[str, str], timeout_s: float, marker: str,
                 retries_after_hang: int = 0, out_dir: Path | None = None) -> subprocess.CompletedProcess:
    """Run cmd (output captured as text); a hang is relaunched up to retries_after_hang times,
    reported as a RuntimeWarning with its stacks each time, and raised as TorchrunHung after the last.
    `out_dir` is removed before every launch, so a relaunch leaves nothing of the hung one."""
    env = {**env, "PYTHONFAULTHANDLER": "1"}
    for attempt in range(retries_after_hang + 1):
        if out_dir is not None:
            shutil.rmtree(out_dir, ignore_errors=True)
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = proc.communicate(timeout=timeout_s)
            return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
        except subprocess.TimeoutExpired:
            job = [pid for pid in pids_with(marker) if pid != os.getpid()]
            for pid in job:   # one at a time: aborted together, their stacks interleave in the shared pipe
                send([pid], signal.SIGABRT)   # faulthandler: every thread's stack, then the process ends
                deadline = time.monotonic() + 2
                while pid in pids_with(marker) and time.monotonic() < deadline:
                    time.sleep(0.02)
            send([*pids_with(marker), proc.pid], signal.SIGKILL)
            out, err = proc.communicate()
            report = (f"torchrun hung (attempt {attempt + 1} of {retries_after_hang + 1}, {timeout_s:.0f} s, "
                      f"processes {job}): {' '.join(cmd)}\n--- stdout\n{out[-4000:]}\n--- stderr, with stacks\n"
                      f"{err[-12000:]}")
            if attempt == retries_after_hang:
                raise TorchrunHung(report) from None
            warnings.warn(report + "\n--- relaunching", RuntimeWarning, stacklevel=2)
    raise AssertionError("unreachable")


def pids_with(marker: str) -> list[int]:
    """Processes whose command line contains marker."""
    pids = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and marker in (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                pids.append(int(d.name))
        except OSError:   # gone meanwhile
            pass
    return pids


def send(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
