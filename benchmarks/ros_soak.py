"""ROS soak: the whole sim graph (launch/sim.launch.xml under `vla up`) for 10 minutes at 20 Hz.

Measures, from a separate observer process on the same machine:
- dropped ticks: expected control ticks (duration x rate) minus motion commands received,
  and late ticks (gaps between commands over 1.5 periods);
- control latency: when a command arrives, how old the newest point cloud is (sim stamp ->
  command delivered: transport, decoding, policy step, safety filter, transport back);
  target p99 <= 50 ms. Compute latency (the command's own stamp, taken when its tick
  started, -> delivered) is reported beside it;
- resident memory (VmRSS) of every node, sampled every 10 s; growth from the first sample
  after warm-up (60 s) to the end, so model/encoder loading does not count as a leak;
- simulator overruns (steps that took longer than the period) and nodes alive at the end.

The policy is the size `vla train policy` builds by default (PolicyConfig()); with no
--checkpoint it is randomly initialised, which costs the same compute per tick as trained
weights (the soak measures the plumbing and the per-tick cost, not task success).

    python benchmarks/ros_soak.py                       # 600 s, writes benchmarks/results/ros_soak.json
    python benchmarks/ros_soak.py --duration-s 60 --name ros_soak_quick
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from vla_stack import bench

REPO = Path(__file__).resolve().parent.parent


@dataclass
class SoakConfig:
    duration_s: float = 600.0
    rate_hz: float = 20.0
    checkpoint: Path | None = None  # action expert checkpoint; None: default-size, randomly initialised
    task: str = "OpenDrawerThenStackRedOnGreen"
    image_size: int = 128
    n_points: int = 1024
    action_trigger: str = "cloud"
    warmup_s: float = 60.0  # memory growth is measured from here on
    domain_id: int = 90
    name: str = "ros_soak"


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def node_name(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        return next(c.decode().split("__node:=")[1] for c in cmd if c.startswith(b"__node:="))
    except (OSError, StopIteration):
        return str(pid)


def default_checkpoint(directory: Path) -> Path:
    import torch

    from vla_stack.policy import PolicyConfig, PolicyModel, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(directory / "policy_default_size_untrained", PolicyModel(PolicyConfig()),
                           {"note": "randomly initialised, for the ROS soak's compute cost only"})


def pct(x, q) -> float:
    return float(np.percentile(x, q)) if len(x) else float("nan")


def main(cfg: SoakConfig) -> Path:
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import PointCloud2
    from std_msgs.msg import String

    from vla_stack.ros2_nodes import qos
    from vla_stack.ros2_nodes.convert import stamp_to_ns
    from vla_stack.ros2_nodes.probe import Probe

    work = Path(tempfile.mkdtemp(prefix="ros_soak_"))
    checkpoint = cfg.checkpoint or default_checkpoint(work)
    env = {**os.environ, "ROS_DOMAIN_ID": str(cfg.domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
           "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "ROS_LOG_DIR": str(work / "roslog")}
    up = subprocess.Popen([sys.executable, "-m", "vla_stack.cli", "up", str(REPO / "launch" / "sim.launch.xml"),
                           f"checkpoint:={checkpoint}", f"task:={cfg.task}", f"image_size:={cfg.image_size}",
                           f"n_points:={cfg.n_points}", f"control_rate_hz:={cfg.rate_hz}",
                           f"action_trigger:={cfg.action_trigger}", "--log-dir", str(work / "logs")], env=env)
    probe = Probe(cfg.domain_id, "soak_observer")
    # Middleware receive timestamps (system clock, ns), so a busy observer does not skew latencies.
    clouds: list[tuple[int, int]] = []  # (received, sim stamp)
    commands: list[tuple[int, int, bool]] = []  # (received, command stamp = its tick's start, moving)

    def on_cloud(msg, info):
        clouds.append((info["received_timestamp"], stamp_to_ns(msg.header.stamp)))

    def on_cmd(msg, info):
        t, r = msg.twist.linear, msg.twist.angular
        moving = any(v != 0.0 for v in (t.x, t.y, t.z, r.x, r.y, r.z))
        commands.append((info["received_timestamp"], stamp_to_ns(msg.header.stamp), moving))

    probe.node.create_subscription(PointCloud2, "points", on_cloud, qos.SENSOR)
    probe.node.create_subscription(TwistStamped, "cmd_twist", on_cmd, qos.COMMAND)
    info = probe.subscribe("sim/info", String, qos.LATCHED)
    try:
        if not probe.wait_for(lambda: info and commands, 180.0):
            raise RuntimeError(f"graph did not come up; logs in {work / 'logs'}")
        instruction = json.loads(info[-1][1].data)["instruction"]
        probe.publisher("instruction", String, qos.LATCHED).publish(String(data=instruction))
        pids = {node_name(p): p for p in children(up.pid)}
        print(f"soak: {len(pids)} nodes {sorted(pids)}, {cfg.duration_s:.0f} s at {cfg.rate_hz:g} Hz", flush=True)
        t_start = time.monotonic()
        t_start_ns, n_clouds_start = time.time_ns(), len(clouds)
        overruns_start = json.loads(info[-1][1].data).get("overruns", 0)
        rss: dict[str, list[tuple[float, float]]] = {n: [] for n in pids}
        load: list[tuple[float, float]] = []  # other work on the machine shows up in latency: record it
        while (elapsed := time.monotonic() - t_start) < cfg.duration_s:
            load.append((round(elapsed, 1), os.getloadavg()[0]))
            for n, p in pids.items():
                rss[n].append((elapsed, rss_mb(p)))
            if up.poll() is not None:
                raise RuntimeError(f"vla up exited during the soak; logs in {work / 'logs'}")
            time.sleep(min(10.0, max(0.0, cfg.duration_s - elapsed)))
        elapsed = time.monotonic() - t_start
        for n, p in pids.items():
            rss[n].append((elapsed, rss_mb(p)))
        window = [c for c in commands if c[0] >= t_start_ns]
        n_clouds = len(clouds) - n_clouds_start
        last_info = json.loads(info[-1][1].data)
        alive = sum(1 for p in pids.values() if Path(f"/proc/{p}").exists())
    finally:
        probe.close()
        up.send_signal(signal.SIGINT)
        up.wait(60)

    arrivals = np.array([c[0] for c in window], np.int64)
    expected = int(round(elapsed * cfg.rate_hz))
    gaps_ms = np.diff(arrivals) / 1e6
    # The cloud a tick used: the newest one received before the tick started (5 ms of slack
    # for the observer receiving it a little after the action expert did).
    cloud_rx = np.array([c[0] for c in clouds], np.int64)
    cloud_stamp = np.array([c[1] for c in clouds], np.int64)
    order = np.argsort(cloud_rx)
    cloud_rx, cloud_stamp = cloud_rx[order], cloud_stamp[order]
    moving = [c for c in window if c[2]]
    idx = np.searchsorted(cloud_rx, [s + 5_000_000 for _r, s, _m in moving], side="right") - 1
    latency_ms = np.array([(r - cloud_stamp[i]) / 1e6 for (r, _s, _m), i in zip(moving, idx) if i >= 0])
    compute_ms = np.array([(r - s) / 1e6 for r, s, _m in window])
    metrics = {
        "duration_s": round(elapsed, 1),
        "rate_hz": cfg.rate_hz,
        "ticks_expected": expected,
        "commands_received": len(window),
        "dropped_ticks": max(0, expected - len(window)),
        "dropped_ticks_pct": 100.0 * max(0, expected - len(window)) / max(expected, 1),
        "stopped_commands": len(window) - len(moving),
        "late_ticks_over_1p5_period": int((gaps_ms > 1.5e3 / cfg.rate_hz).sum()),
        "max_command_gap_ms": float(gaps_ms.max()) if len(gaps_ms) else float("nan"),
        "control_latency_p50_ms": pct(latency_ms, 50),
        "control_latency_p99_ms": pct(latency_ms, 99),
        "control_latency_max_ms": float(latency_ms.max()) if len(latency_ms) else float("nan"),
        "compute_latency_p50_ms": pct(compute_ms, 50),
        "compute_latency_p99_ms": pct(compute_ms, 99),
        "sim_observations": n_clouds,
        "sim_overruns": int(last_info.get("overruns", 0) - overruns_start),
        "nodes_alive_at_end": alive,
        "nodes_started": len(pids),
    }
    for n, series in rss.items():
        after = [(t, m) for t, m in series if t >= cfg.warmup_s] or series
        metrics[f"rss_{n}_start_mb"] = round(after[0][1], 1)
        metrics[f"rss_{n}_end_mb"] = round(after[-1][1], 1)
        metrics[f"rss_{n}_growth_mb"] = round(after[-1][1] - after[0][1], 1)
    metrics["rss_total_growth_mb"] = round(sum(metrics[f"rss_{n}_growth_mb"] for n in rss), 1)
    metrics["control_latency_p99_target_met"] = int(metrics["control_latency_p99_ms"] <= 50.0)
    metrics["load_average_1min_mean"] = round(float(np.mean([v for _t, v in load])), 2)
    details = {"config": {k: str(v) for k, v in cfg.__dict__.items()}, "checkpoint": str(checkpoint),
               "load_average_1_5_15_at_end": os.getloadavg(), "load_average_1min_series": load,
               "rss_series_mb": {n: [(round(t, 1), round(m, 1)) for t, m in s] for n, s in rss.items()},
               "latency_definition": "control: command received (DDS receive time at the observer) minus the sim "
                                     "stamp of the newest cloud received before the command's tick started (moving "
                                     "commands); compute: command received minus its own stamp (tick start)",
               "logs": str(work / "logs")}
    path = bench.write_results(cfg.name, metrics, details=details)
    bench.print_table([{"metric": k, "value": v} for k, v in metrics.items()], title=f"ROS soak ({path})")
    return path


if __name__ == "__main__":
    main(tyro.cli(SoakConfig))
