"""Stop a node process as `vla up` and ROS 2 launch do: SIGINT, then SIGTERM, then SIGKILL.

A node that exits cleanly on the SIGTERM after a missed SIGINT still stops cleanly under both launchers;
CI boxes have shown a node miss the first SIGINT (cause not found: docs/ros.md, "Stopping")."""

import signal
import subprocess


def stop_node(proc: subprocess.Popen, sigint_s: float = 20.0, sigterm_s: float = 30.0) -> int:
    """The node's exit code; an AssertionError (the node killed, no orphan left) if it ignored both."""
    for sig, wait_s in ((signal.SIGINT, sigint_s), (signal.SIGTERM, sigterm_s)):
        proc.send_signal(sig)
        try:
            return proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue
    proc.kill()
    proc.wait()
    raise AssertionError(f"{proc.args}: ignored SIGINT and SIGTERM")
