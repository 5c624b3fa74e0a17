"""`vla up <launch file>`: start the graph a ROS 2 launch file describes, without ROS 2 `launch`.

Each node is a child process running the pip-installed rclpy, given its name, namespace,
parameters and remappings through `--ros-args`, exactly as `ros2 launch` would. Stopping
`vla up` (Ctrl-C, SIGTERM, or its own exit) stops every child: SIGINT first so nodes shut
down cleanly, then SIGTERM, then SIGKILL; children also get SIGTERM from the kernel if
`vla up` itself is killed (PR_SET_PDEATHSIG), so no node outlives it.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import tyro

from vla_stack.ros2_nodes.executables import NODES
from vla_stack.ros2_nodes.launch_file import PACKAGE, LaunchFileError, NodeSpec, load_launch, parse_launch_arguments


@dataclass
class UpConfig:
    """Start every node of a ROS 2 launch file (XML or YAML) as child processes."""

    launch_file: Annotated[Path, tyro.conf.Positional]
    """a launch file, e.g. launch/sim.launch.xml"""
    launch_arguments: Annotated[tuple[str, ...], tyro.conf.Positional] = ()
    """launch arguments as name:=value, like ros2 launch"""
    duration_s: float = 0.0
    """stop everything after this many seconds (0: run until Ctrl-C)"""
    log_dir: Path | None = None
    """write each node's output to <log_dir>/<name>.log instead of this terminal"""
    stop_on_node_exit: bool = True
    """stop the whole graph when any node exits (ros2 launch's on_exit=shutdown)"""
    dry_run: bool = False
    """print the command of each node and exit"""
    stop_timeout_s: float = 5.0
    """how long each stage of the shutdown (SIGINT, then SIGTERM) waits before escalating"""
    env: dict[str, str] = field(default_factory=dict)
    """extra environment variables for every node"""


def node_command(spec: NodeSpec) -> list[str]:
    if spec.package == PACKAGE:
        if spec.executable not in NODES:
            raise LaunchFileError(f"package {PACKAGE} has no executable {spec.executable!r}; it has {sorted(NODES)}")
        prog = [sys.executable, "-m", NODES[spec.executable]]
    else:
        found = shutil.which(spec.executable)
        if not found:
            raise LaunchFileError(f"executable {spec.executable!r} of package {spec.package!r} not found on PATH "
                                  f"(vla up runs {PACKAGE} nodes and programs on PATH)")
        prog = [found]
    return prog + spec.arguments + spec.ros_args()


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class Graph:
    """The running children of one launch file."""

    def __init__(self, specs: list[NodeSpec], *, log_dir: Path | None = None, env: dict[str, str] | None = None):
        self.specs = specs
        self.log_dir = log_dir
        self.env = dict(env or {})
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs = []

    def label(self, spec: NodeSpec, i: int) -> str:
        return spec.name or f"{spec.executable}_{i}"

    def start(self) -> None:
        if self.log_dir:
            self.log_dir.mkdir(parents=True, exist_ok=True)
        for i, spec in enumerate(self.specs):
            label = self.label(spec, i)
            cmd = node_command(spec)
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env, **spec.env}
            out = None
            if self.log_dir:
                out = open(self.log_dir / f"{label}.log", "wb")
                self._logs.append(out)
            self.procs[label] = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None,
                                                 preexec_fn=_die_with_parent)

    def exited(self) -> dict[str, int]:
        return {k: p.returncode for k, p in self.procs.items() if p.poll() is not None}

    def stop(self, timeout_s: float = 5.0) -> dict[str, int]:
        """SIGINT, then SIGTERM, then SIGKILL; returns each child's exit code."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            alive = [p for p in self.procs.values() if p.poll() is None]
            if not alive:
                break
            for p in alive:
                p.send_signal(sig)
            deadline = time.monotonic() + timeout_s
            for p in alive:
                try:
                    p.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
        for f in self._logs:
            f.close()
        return {k: p.returncode for k, p in self.procs.items()}


def up(config: UpConfig) -> int:
    try:
        specs = load_launch(config.launch_file, parse_launch_arguments(list(config.launch_arguments)))
        commands = [node_command(s) for s in specs]
    except (LaunchFileError, OSError) as e:
        print(f"vla up: {e}", file=sys.stderr)
        return 2
    if config.dry_run:
        for s, cmd in zip(specs, commands):
            print(f"[{s.name or s.executable}] {' '.join(cmd)}")
        return 0
    graph = Graph(specs, log_dir=config.log_dir, env=config.env)
    stopping = {"why": None}

    def on_signal(signum, _frame):
        stopping["why"] = signal.Signals(signum).name

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        graph.start()
        print(f"vla up: started {len(graph.procs)} node(s): {', '.join(graph.procs)}", file=sys.stderr, flush=True)
        t_end = time.monotonic() + config.duration_s if config.duration_s > 0 else float("inf")
        while stopping["why"] is None and time.monotonic() < t_end:
            dead = graph.exited()
            if dead and (config.stop_on_node_exit or len(dead) == len(graph.procs)):
                print(f"vla up: node(s) exited {dead}; stopping the graph", file=sys.stderr, flush=True)
                code = 1 if any(c != 0 for c in dead.values()) else 0
                break
            time.sleep(0.1)
    finally:
        codes = graph.stop(config.stop_timeout_s)
        for s, h in old.items():
            signal.signal(s, h)
    print(f"vla up: stopped ({stopping['why'] or 'done'}); exit codes {codes}", file=sys.stderr, flush=True)
    return code
