"""The gymnasium environment: one task of the suite on one arm, observations per the schema."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from vla_stack import schema
from vla_stack.sim.cameras import RendererPool, extrinsics, intrinsics
from vla_stack.sim.controller import ControllerConfig, EndEffectorController
from vla_stack.sim.expert import ScriptedExpert
from vla_stack.sim.facts import FactChecker
from vla_stack.sim.pointcloud import WorkspaceCrop, depth_to_cloud
from vla_stack.sim.progress import TaskProgress
from vla_stack.sim.scene import DRAWER_TRAVEL, Scene
from vla_stack.sim.tasks import Task, get_task

ALL_OBS_KEYS = (schema.OBS_RGB, schema.OBS_DEPTH, schema.OBS_WRIST_RGB, schema.OBS_POINTS, schema.OBS_COLORS,
                schema.OBS_STATE)
SCENE_CAMERA = "scene"
WRIST_CAMERA = "wrist"


class TabletopEnv(gym.Env):
    """Tabletop manipulation with language instructions.

    Args:
        task: a name from `task_names()`.
        robot: "panda" (7-DoF, Franka Panda kinematics) or "ur5e" (6-DoF, UR5e kinematics).
        image_size: side of the square scene RGB-D and wrist images.
        n_points: points in the cloud.
        workspace_yaw: rotation (rad) of the whole world (objects, fixtures, cameras, lights,
            table and the robot's base mount) about the base's vertical axis; joint angles are
            as at yaw 0, so the episode is the yaw-0 episode rotated.
        instruction: the phrasing to use (default: the task's canonical instruction).
        obs_keys: a subset of the schema observation keys (e.g. ("state",) for fast expert
            rollouts); rendering is skipped for keys not requested.
        drawer_open_at_reset: override the task's default initial drawer state.
        randomize_visuals: distractor colours, lighting, camera jitter.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, task: str = "PutRedInBowl", robot: str = "panda", image_size: int = 128, n_points: int = 1024,
                 workspace_yaw: float = 0.0, instruction: str | None = None, render_mode: str | None = None,
                 obs_keys: tuple[str, ...] | None = None, drawer_open_at_reset: bool | None = None,
                 randomize_visuals: bool = True, render_size: int = 256, voxel_m: float = 0.006,
                 crop: WorkspaceCrop = WorkspaceCrop(), controller: ControllerConfig = ControllerConfig()):
        if render_mode not in (None, "rgb_array"):
            raise schema.SchemaError(f"render_mode: {render_mode!r} not supported; use 'rgb_array' or None")
        if image_size < 16 or n_points < 16:
            raise schema.SchemaError(f"image_size {image_size} / n_points {n_points}: both must be at least 16")
        self.task: Task = get_task(task)
        self._set_instruction(instruction)
        self.robot = robot
        self.scene = Scene(robot)
        self.controller = EndEffectorController(self.scene, controller)
        self.facts = FactChecker(self.scene)
        self.progress = TaskProgress(self.task, self.facts)
        self.expert = ScriptedExpert(self.scene, self.facts)
        self.image_size, self.n_points, self.render_size = image_size, n_points, render_size
        self.workspace_yaw = float(workspace_yaw)
        self.drawer_open_at_reset = drawer_open_at_reset
        self.randomize_visuals = randomize_visuals
        self.voxel_m, self.crop = voxel_m, crop
        self.render_mode = render_mode
        keys = ALL_OBS_KEYS if obs_keys is None else tuple(obs_keys)
        unknown = [k for k in keys if k not in ALL_OBS_KEYS]
        if unknown:
            raise schema.SchemaError(f"obs_keys: unknown {unknown}; valid: {ALL_OBS_KEYS}")
        self.obs_keys = keys
        self._renderers: RendererPool | None = None  # created lazily (after a fork)
        s, n = image_size, n_points
        all_spaces = {
            schema.OBS_RGB: spaces.Box(0, 255, (s, s, 3), np.uint8),
            schema.OBS_DEPTH: spaces.Box(0.0, np.inf, (s, s), np.float32),
            schema.OBS_WRIST_RGB: spaces.Box(0, 255, (s, s, 3), np.uint8),
            schema.OBS_POINTS: spaces.Box(-np.inf, np.inf, (n, 3), np.float32),
            schema.OBS_COLORS: spaces.Box(0.0, 1.0, (n, 3), np.float32),
            schema.OBS_STATE: spaces.Box(-np.inf, np.inf, (schema.STATE_DIM,), np.float32),
        }
        self.observation_space = spaces.Dict({k: all_spaces[k] for k in keys})
        self.action_space = spaces.Box(schema.ACTION_LOW, schema.ACTION_HIGH, (schema.ACTION_DIM,), np.float32)
        self.steps = 0
        self._last_subtask_done = False

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        if "task" in options:
            self.task = get_task(options["task"])
            self.progress = TaskProgress(self.task, self.facts)
            self._set_instruction(options.get("instruction"))
        elif "instruction" in options:
            self._set_instruction(options["instruction"])
        if "workspace_yaw" in options:
            self.workspace_yaw = float(options["workspace_yaw"])
        opened = self.drawer_open_at_reset if self.drawer_open_at_reset is not None else self.task.drawer_open_at_reset
        opened = bool(options.get("drawer_open_at_reset", opened))
        self.scene.reset(self.np_random, self.workspace_yaw, drawer_opening=0.16 if opened else 0.0,
                         randomize_visuals=self.randomize_visuals)
        self.facts.reset()
        self.expert.reset()
        self.progress.index = 0
        self.progress.update()
        self.steps = 0
        self._last_subtask_done = False
        return self._observation(), self._info()

    def step(self, action):
        self.controller.apply(action)  # raises SchemaError on NaN/inf/wrong shape, clips the rest
        self.steps += 1
        self.facts.update()
        self._last_subtask_done = self.progress.update()
        success = self.progress.done
        reward = 1.0 if success else 0.0
        return self._observation(), reward, success, False, self._info()

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self._pool().rgb(self.scene.data, SCENE_CAMERA, self.render_size, self.render_size)

    def close(self):
        if self._renderers is not None:
            self._renderers.close()
            self._renderers = None

    # ------------------------------------------------------------------ extras used by others
    def expert_action(self) -> np.ndarray:
        """The scripted expert's action for the current state (privileged information)."""
        st = None if self.progress.done else self.task.subtasks[self.progress.index]
        return self.expert.act(st, self.progress.index, self.steps)

    @property
    def cameras(self) -> dict[str, tuple[schema.CameraIntrinsics, schema.CameraExtrinsics]]:
        m, d, s = self.scene.model, self.scene.data, self.image_size
        out = {}
        for name in (SCENE_CAMERA, WRIST_CAMERA):
            cid = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_CAMERA, name)
            out[name] = (intrinsics(m, cid, s, s), extrinsics(d, cid))
        return out

    @property
    def current_subtask(self) -> str:
        return schema.DONE_TOKEN if self.progress.done else self.task.subtasks[self.progress.index].text

    def set_drawer_opening(self, opening_m: float) -> None:
        """Move the drawer (a mid-episode perturbation); the current subtask follows."""
        if not np.isfinite(opening_m) or not 0.0 <= opening_m <= DRAWER_TRAVEL:
            raise schema.SchemaError(f"drawer opening {opening_m!r} m: must be within [0, {DRAWER_TRAVEL}]")
        d = self.scene.data
        d.qpos[self.scene.drawer_qpos_adr] = opening_m
        d.qvel[self.scene.model.jnt_dofadr[mujoco.mj_name2id(self.scene.model, mujoco.mjtObj.mjOBJ_JOINT, "drawer")]] = 0
        mujoco.mj_forward(self.scene.model, d)
        self.progress.update()

    def set_task(self, task: str, instruction: str | None = None) -> dict:
        """Switch to another task without resetting the scene (CALVIN-style chains)."""
        self.task = get_task(task)
        self._set_instruction(instruction)
        self.progress = TaskProgress(self.task, self.facts)
        self.facts.remember_push_origins()
        self.expert.reset()
        self.progress.update()
        self._last_subtask_done = False
        return self._info()

    # ------------------------------------------------------------------ internals
    def _set_instruction(self, instruction: str | None) -> None:
        if instruction is not None and (not isinstance(instruction, str) or not instruction.strip()):
            raise schema.SchemaError(f"instruction: must be a non-empty string, got {instruction!r}")
        self.instruction = instruction or self.task.instruction

    def _pool(self) -> RendererPool:
        if self._renderers is None:
            self._renderers = RendererPool(self.scene.model)
        return self._renderers

    def _state(self) -> np.ndarray:
        s = self.scene
        return schema.RobotState(ee_pos=s.tcp_pos(), ee_quat=s.tcp_quat(), gripper=s.gripper_opening(),
                                 joints=s.arm_qpos()).to_vector()

    def _observation(self) -> dict[str, np.ndarray]:
        obs: dict[str, np.ndarray] = {}
        keys, d, size = self.obs_keys, self.scene.data, self.image_size
        want_cloud = schema.OBS_POINTS in keys or schema.OBS_COLORS in keys
        if want_cloud or schema.OBS_DEPTH in keys:
            rgb, depth = self._pool().rgbd(d, SCENE_CAMERA, size, size)
            if schema.OBS_RGB in keys:
                obs[schema.OBS_RGB] = rgb
            if schema.OBS_DEPTH in keys:
                obs[schema.OBS_DEPTH] = depth
            if want_cloud:
                intr, extr = self.cameras[SCENE_CAMERA]
                pts, cols = depth_to_cloud(depth, rgb, intr, extr, self.n_points, self.crop, self.voxel_m,
                                           frame_yaw=self.workspace_yaw)
                if schema.OBS_POINTS in keys:
                    obs[schema.OBS_POINTS] = pts
                if schema.OBS_COLORS in keys:
                    obs[schema.OBS_COLORS] = cols
        elif schema.OBS_RGB in keys:
            obs[schema.OBS_RGB] = self._pool().rgb(d, SCENE_CAMERA, size, size)
        if schema.OBS_WRIST_RGB in keys:
            obs[schema.OBS_WRIST_RGB] = self._pool().rgb(d, WRIST_CAMERA, size, size)
        if schema.OBS_STATE in keys:
            obs[schema.OBS_STATE] = self._state()
        return {k: obs[k] for k in keys}

    def _info(self) -> dict[str, Any]:
        return {
            schema.INFO_INSTRUCTION: self.instruction,
            schema.INFO_SUBTASK: self.current_subtask,
            schema.INFO_SUBTASK_INDEX: int(self.progress.index),
            schema.INFO_SUBTASK_DONE: bool(self._last_subtask_done),
            schema.INFO_SUCCESS: bool(self.progress.done),
            "task": self.task.name,
            "n_subtasks": self.progress.n_subtasks,
        }
