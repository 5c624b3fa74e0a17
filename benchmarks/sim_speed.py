"""Control steps per second of the simulator, with and without rendering and point clouds.

Target (issue 2): at least 200 control steps/s on ONE core with one 128x128 RGB-D camera
and a 1024-point cloud. The process pins itself to one core and asks Mesa's llvmpipe for a
single render thread, so the figure is per core. All configurations run in the same process,
one after another, on the same episode seeds; the ratios compare them side by side.
The machine may be shared: besides wall-clock steps/s, steps per CPU-second of this
process (time.process_time, all its threads) give the per-core cost free of waiting for
other processes; the 1-minute load average is recorded with the result.

    python benchmarks/sim_speed.py --steps 400
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "1")  # llvmpipe: one rendering thread = one core

import numpy as np  # noqa: E402

from vla_stack import bench, schema  # noqa: E402

CONFIGS = {
    "physics_only": (schema.OBS_STATE,),
    "rgbd_128_cloud_1024": (schema.OBS_RGB, schema.OBS_DEPTH, schema.OBS_POINTS, schema.OBS_COLORS, schema.OBS_STATE),
    "full_obs_with_wrist": None,  # every schema key: scene RGB-D, wrist RGB, cloud, state
}


def measure(obs_keys, robot: str, steps: int, image_size: int, n_points: int) -> dict[str, float]:
    from vla_stack.sim.env import TabletopEnv

    env = TabletopEnv(task="PutRedInBowl", robot=robot, image_size=image_size, n_points=n_points, obs_keys=obs_keys)
    env.reset(seed=0)
    for _ in range(5):  # warm-up: renderer creation, first frames
        env.step(env.expert_action())
    env.reset(seed=0)
    n, t_total, t_expert, cpu_total = 0, 0.0, 0.0, 0.0
    seed = 0
    while n < steps:
        t0 = time.perf_counter()
        action = env.expert_action()
        t1, c1 = time.perf_counter(), time.process_time()
        _, _, terminated, truncated, _ = env.step(action)
        t2, c2 = time.perf_counter(), time.process_time()
        t_expert += t1 - t0
        t_total += t2 - t1
        cpu_total += c2 - c1
        n += 1
        if terminated or truncated:
            seed += 1
            env.reset(seed=seed)
    env.close()
    return {"steps_per_s": n / t_total, "step_ms": 1e3 * t_total / n, "expert_ms": 1e3 * t_expert / n,
            "steps_per_cpu_s": n / cpu_total, "step_cpu_ms": 1e3 * cpu_total / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--image-size", type=int, default=128)
    ap.add_argument("--n-points", type=int, default=1024)
    ap.add_argument("--robots", default="panda,ur5e")
    ap.add_argument("--all-cores", action="store_true", help="do not pin to one core")
    ap.add_argument("--name", default="sim_speed", help="result file name")
    args = ap.parse_args()
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()

    rows, metrics = [], {}
    for robot in args.robots.split(","):
        base = None
        for name, keys in CONFIGS.items():
            r = measure(keys, robot, args.steps, args.image_size, args.n_points)
            base = base or r["steps_per_s"]
            rows.append({"robot": robot, "config": name, "steps_per_s": r["steps_per_s"], "step_ms": r["step_ms"],
                         "steps_per_cpu_s": r["steps_per_cpu_s"], "step_cpu_ms": r["step_cpu_ms"],
                         "expert_ms": r["expert_ms"], "vs_physics_only": r["steps_per_s"] / base})
            metrics[f"{robot}_{name}_steps_per_s"] = r["steps_per_s"]
            metrics[f"{robot}_{name}_step_ms"] = r["step_ms"]
            metrics[f"{robot}_{name}_steps_per_cpu_s"] = r["steps_per_cpu_s"]
    metrics["cores_used"] = cores
    metrics["load_avg_1min"] = os.getloadavg()[0]
    bench.print_table(rows, title=f"control steps/s on {cores} core(s), image {args.image_size}, {args.n_points} points "
                                  f"(20 Hz control, 10 physics substeps of 5 ms; load avg {os.getloadavg()[0]:.1f})")
    path = bench.write_results(args.name, metrics, details={"rows": rows, "steps": args.steps,
                                                              "image_size": args.image_size, "n_points": args.n_points})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
