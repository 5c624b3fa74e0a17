"""Does the sim drop a cube gripped off centre? The scripted expert does PutGreenInBowl with its
grasp moved along the finger pads' free axis; with and without MuJoCo's no-slip solver.

Why: the trained action expert loses cubes on the way to the bowl (docs/agent.md). If square but
off-centre grasps slipped too, the sim's contacts would be the cause; they do not (session 5).

    python benchmarks/grasp_offset_check.py --seeds 8
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass
class GraspOffsetConfig:
    task: str = "PutGreenInBowl"
    cube: str = "green_cube"
    seeds: int = 8  # episodes per cell, seeds 1000..
    offsets_cm: tuple[float, ...] = (0.0, 0.8, 1.1, 1.4)
    noslip_iterations: tuple[int, ...] = (0, 10)


def run(cfg: GraspOffsetConfig) -> dict:
    import vla_stack.sim as sim
    from vla_stack import bench, schema
    from vla_stack.sim import expert as E

    offset = [0.0]
    square_pick = E.ScriptedExpert._pick

    def off_centre_pick(self, st):
        if self.phase != 1 or not offset[0]:
            return square_pick(self, st)
        s = self.scene   # phase 1 of the expert's pick, with the target moved along the pads
        p = s.body_pos(st.object)
        yaw = self.clear_yaw(p, s.body_yaw(st.object), exclude=(st.object,))
        free = s.tcp_mat()[:, 0] * [1, 1, 0]
        target = np.array([p[0], p[1], max(p[2] - 0.004, E.CUBE_HALF - 0.004)]) + offset[0] * free / np.linalg.norm(free)
        a = self.move(target, yaw, E.OPEN, E.SLOW_STEP_M * 1.5)
        self._advance(np.linalg.norm(target - s.tcp_pos()) < 0.008, timeout=40)
        return a

    E.ScriptedExpert._pick = off_centre_pick
    metrics, rows = {}, []
    try:
        for noslip in cfg.noslip_iterations:
            for off in cfg.offsets_cm:
                offset[0] = off / 100
                env = sim.make(cfg.task, obs_keys=("state",))
                ok = dropped = 0
                for seed in range(1000, 1000 + cfg.seeds):
                    env.reset(seed=seed)
                    scene = env.unwrapped.scene
                    scene.model.opt.noslip_iterations = noslip
                    lifted = lost = False
                    while True:
                        _, _, term, trunc, info = env.step(env.unwrapped.expert_action())
                        held = scene.is_grasped(cfg.cube)
                        lifted |= held and scene.body_pos(cfg.cube)[2] > 0.06
                        lost |= lifted and not held and scene.gripper_opening() < 0.035  # closed on nothing
                        if term or trunc:
                            break
                    ok += bool(info[schema.INFO_SUCCESS])
                    dropped += lost
                env.close()
                key = f"noslip{noslip}_offset_{off:g}cm".replace(".", "p")
                metrics[f"success_{key}"] = ok / cfg.seeds
                metrics[f"dropped_fraction_{key}"] = dropped / cfg.seeds
                rows.append({"noslip_iterations": noslip, "offset_cm": off, "success": f"{ok}/{cfg.seeds}",
                             "cube lost while closed": f"{dropped}/{cfg.seeds}"})
    finally:
        E.ScriptedExpert._pick = square_pick
    bench.print_table(rows, title=f"{cfg.task}: scripted expert, grasp moved off centre along the pads")
    bench.write_results("grasp_offset_check", metrics, details={"config": vars(cfg) | {"offsets_cm": list(cfg.offsets_cm)}})
    return metrics


if __name__ == "__main__":
    import tyro

    run(tyro.cli(GraspOffsetConfig))
