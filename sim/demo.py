"""`vla sim demo` (the scripted expert on a task, to an MP4) and `vla sim tasks`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")


@dataclass
class DemoConfig:
    """Run the scripted expert on one task headless and write an MP4 with captions."""

    task: str = "PutGreenInDrawer"
    robot: str = "panda"  # panda (7-DoF) or ur5e (6-DoF)
    seed: int = 0
    workspace_yaw: float = 0.0  # radians, rotates the whole layout about the base
    instruction: str | None = None  # default: the task's canonical phrasing
    out: Path = Path("outputs/demo.mp4")
    width: int = 640
    height: int = 360
    max_steps: int = 0  # 0: the task's episode limit


@dataclass
class TasksConfig:
    """List tasks (subtasks and splits); --json prints the whole machine-readable suite."""

    json: bool = False
    split: str | None = None  # only the tasks of this split


def _caption(frame: np.ndarray, lines: list[tuple[str, tuple[int, int, int]]]) -> np.ndarray:
    import cv2

    out = frame.copy()
    h = 26 * len(lines) + 8
    out[:h] = (out[:h] * 0.35).astype(np.uint8)
    for i, (text, color) in enumerate(lines):
        cv2.putText(out, text, (10, 22 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 1, cv2.LINE_AA)
    return out


def run(config: DemoConfig) -> int:
    import imageio.v2 as imageio

    from vla_stack import schema
    from vla_stack.sim.cameras import RendererPool
    from vla_stack.sim.env import TabletopEnv
    from vla_stack.sim.registration import max_episode_steps

    env = TabletopEnv(task=config.task, robot=config.robot, workspace_yaw=config.workspace_yaw,
                      instruction=config.instruction, obs_keys=(schema.OBS_STATE,))
    _, info = env.reset(seed=config.seed)
    pool = RendererPool(env.scene.model)
    half_w = config.width // 2
    limit = config.max_steps or max_episode_steps(len(env.task.subtasks))
    config.out.parent.mkdir(parents=True, exist_ok=True)

    def frame(info: dict) -> np.ndarray:
        d = env.scene.data
        left = pool.rgb(d, "front", half_w, config.height)
        right = pool.rgb(d, "scene", config.width - half_w, config.height)
        img = np.concatenate([left, right], axis=1)
        done_color = (120, 255, 120) if info[schema.INFO_SUCCESS] else (255, 220, 120)
        return _caption(img, [
            (f"instruction: {info[schema.INFO_INSTRUCTION]}", (255, 255, 255)),
            (f"subtask {info[schema.INFO_SUBTASK_INDEX] + (0 if info[schema.INFO_SUCCESS] else 1)}"
             f"/{len(env.task.subtasks)}: {info[schema.INFO_SUBTASK]}", done_color),
            (f"{config.robot}  step {env.steps}", (200, 200, 200)),
        ])

    with imageio.get_writer(config.out, fps=env.metadata["render_fps"], codec="libx264", quality=7,
                            macro_block_size=8) as writer:
        writer.append_data(frame(info))
        for _ in range(limit):
            _, _, terminated, _, info = env.step(env.expert_action())
            writer.append_data(frame(info))
            if terminated:
                for _ in range(env.metadata["render_fps"]):  # a second of the finished scene
                    writer.append_data(frame(info))
                break
    pool.close()
    env.close()
    status = "succeeded" if info[schema.INFO_SUCCESS] else "did NOT succeed"
    print(f"task {config.task} ({config.robot}, seed {config.seed}): expert {status} in {env.steps} steps")
    print(f"video written to {config.out.resolve()}")
    return 0 if info[schema.INFO_SUCCESS] else 1


def list_tasks(config: TasksConfig) -> int:
    from vla_stack.sim.tasks import describe_suite, load_tasks, split_task_names

    if config.json:
        print(json.dumps(describe_suite(), indent=2))
        return 0
    names = split_task_names(config.split) if config.split else list(load_tasks())
    splits = {s: set(split_task_names(s)) for s in ("train", "heldout_compositions", "heldout_paraphrases", "chains")}
    for name in names:
        t = load_tasks()[name]
        tags = ",".join(s for s, members in splits.items() if name in members)
        print(f"{name}  [{tags}]  vla_stack/{name}-v0")
        print(f"    \"{t.instruction}\"")
        for i, st in enumerate(t.subtasks):
            print(f"    {i + 1}. {st.text}")
    return 0
