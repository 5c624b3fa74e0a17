"""`vla demo`: the whole stack (planner -> world model -> action expert -> safety) on one
instruction in simulation, on the CPU, to an MP4 with the instruction, the current subtask,
the predicted subgoal as an inset and the outcome drawn on every frame.

The scripted-expert demo stays available as `vla sim demo`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

#: The default: a held-out composition (pushing the green cube toward the button was never trained; push
#: was, on other object-target pairs). It is the one the shipped stack completes in the benchmark (4 of 4);
#: those that need placing or stacking it does not yet (benchmarks/results/compositional.md).
DEFAULT_TASK = "PushGreenTowardButton"


@dataclass
class AgentDemoConfig:
    """Run the full learned stack on an instruction of the suite and write an MP4."""

    instruction: str | None = None  # any instruction of the suite (`vla sim tasks`); default: a held-out composition
    task: str | None = None  # the task whose success the sim judges (default: found from the instruction)
    weights: Path | None = None  # shipped weights folder (default: the repository's `shipped/`)
    robot: str = "panda"
    seed: int = 7
    workspace_yaw: float = 0.0
    mode: str = "full"  # full | no_world_model | flat
    out: Path = Path("outputs/agent_demo.mp4")
    width: int = 640
    height: int = 360
    max_steps: int = 0  # 0: the task's episode limit


def find_task(instruction: str) -> str:
    """The suite task an instruction belongs to (training or held-out phrasing)."""
    from vla_stack import schema
    from vla_stack.sim.tasks import load_tasks

    wanted = " ".join(instruction.lower().split())
    for name, t in load_tasks().items():
        if wanted in (" ".join(s.lower().split()) for s in (*t.instructions, *t.heldout_instructions)):
            return name
    examples = [t.instruction for t in list(load_tasks().values())[:4]]
    raise schema.SchemaError(f"instruction {instruction!r} is not an instruction of the suite (`vla sim tasks` "
                             f"lists them, e.g. {examples}); or name the task that judges it with --task")


def _inset(frame: np.ndarray, image: np.ndarray | None, label: str, size: int) -> np.ndarray:
    import cv2

    h, w = frame.shape[:2]
    x0, y0 = w - size - 8, h - size - 26
    frame[y0 - 2: y0 + size + 2, x0 - 2: x0 + size + 2] = 255
    if image is None:
        frame[y0: y0 + size, x0: x0 + size] = 40
        cv2.putText(frame, "no subgoal yet", (x0 + 6, y0 + size // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (220, 220, 220), 1, cv2.LINE_AA)
    else:
        frame[y0: y0 + size, x0: x0 + size] = cv2.resize(image, (size, size), interpolation=cv2.INTER_NEAREST)
    cv2.putText(frame, label, (x0, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
    return frame


def run(config: AgentDemoConfig) -> int:
    t_start = time.monotonic()
    import imageio.v2 as imageio

    from vla_stack import schema
    from vla_stack.sim.cameras import RendererPool
    from vla_stack.sim.demo import _caption
    from vla_stack.sim.registration import max_episode_steps
    from vla_stack.sim.tasks import get_task, load_splits

    from .config import AgentConfig, sim_safety
    from .rollout import make_env, run_episode
    from .weights import DEFAULT_DIR, load_agent, sim_settings

    task = config.task or (find_task(config.instruction) if config.instruction else DEFAULT_TASK)
    instruction = config.instruction or get_task(task).instruction
    held_out = any(item["task"] == task and item["instruction"] == instruction
                   for item in load_splits()["heldout_compositions"])
    weights = config.weights or DEFAULT_DIR
    print(f"loading the shipped weights from {weights} ...", flush=True)
    agent = load_agent(weights, AgentConfig(mode=config.mode, safety=sim_safety(config.workspace_yaw)))
    sim = sim_settings(weights)
    env = make_env(task, config.robot, sim.get("n_points", 512), sim.get("image_size", 128),
                   config.workspace_yaw, instruction)
    pool = RendererPool(env.scene.model)
    limit = config.max_steps or max_episode_steps(len(env.task.subtasks))
    half_w = config.width // 2
    inset = min(160, config.height // 2)
    config.out.parent.mkdir(parents=True, exist_ok=True)
    tag = "held-out composition" if held_out else "suite task"
    print(f"{tag} {task}: \"{instruction}\" ({config.robot}, seed {config.seed}, up to {limit} steps)", flush=True)

    with imageio.get_writer(config.out, fps=env.metadata["render_fps"], codec="libx264", quality=7,
                            macro_block_size=8) as writer:
        def on_tick(obs, ainfo, info):
            d = env.scene.data
            img = np.concatenate([pool.rgb(d, "front", half_w, config.height),
                                  pool.rgb(d, "scene", config.width - half_w, config.height)], axis=1)
            success = info[schema.INFO_SUCCESS]
            subtask = ainfo.subtask or "(waiting for the planner)"
            img = _caption(img, [
                (f"instruction: {instruction}", (255, 255, 255)),
                (("flat policy: conditioned on the instruction, no planner" if config.mode == "flat" else
                  f"subtask {ainfo.subtasks_done + (0 if subtask == schema.DONE_TOKEN else 1)}: {subtask}"), (255, 220, 120)),
                (f"agent: {ainfo.status}   safety: {ainfo.safety[:40]}   step {env.steps}", (200, 200, 200)),
                ("SUCCESS" if success else f"sim: {info[schema.INFO_SUBTASK_INDEX]}/{info['n_subtasks']} subtasks done",
                 (120, 255, 120) if success else (200, 200, 200)),
            ])
            writer.append_data(_inset(img, ainfo.subgoal_rgb, "predicted subgoal", inset))
            if ainfo.tick % 100 == 0:
                print(f"  step {ainfo.tick}: {ainfo.status}, subtask {subtask!r}", flush=True)

        result = run_episode(agent, env, instruction, seed=config.seed, max_steps=limit, on_tick=on_tick)
    pool.close()
    env.close()
    agent.close()
    verdict = "SUCCEEDED" if result.success else "did NOT succeed"
    print(f"full stack {verdict} on {task} in {result.steps} steps: {result.subtasks_completed}/{result.n_subtasks} "
          f"subtasks done (sim); planner said DONE: {result.agent_done}; agent tick median {result.median_step_ms:.0f} ms, "
          f"slowest {result.max_step_ms:.0f} ms; "
          f"{time.monotonic() - t_start:.0f} s in all")
    print(f"video written to {config.out.resolve()}")
    return 0
