"""End-effector controller: the schema action (delta pose + gripper) -> joint targets.

Damped least-squares differential IK on MuJoCo's site Jacobian, once per control tick,
then `substeps` physics steps with the joint position servos holding the new targets. The
same code drives the 7-DoF and the 6-DoF arm; the 7-DoF one uses its redundancy to stay
near the home posture (null-space term).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from vla_stack import schema
from vla_stack.sim import kinematics as kin
from vla_stack.sim.scene import Scene


@dataclass(frozen=True)
class ControllerConfig:
    control_hz: float = 20.0
    damping: float = 0.05  # DLS damping (metres / radians)
    nullspace_gain: float = 0.2  # pull towards the home posture, redundant arms only


class EndEffectorController:
    def __init__(self, scene: Scene, config: ControllerConfig = ControllerConfig()):
        self.scene = scene
        self.config = config
        dt = scene.model.opt.timestep
        self.substeps = max(1, int(round(1.0 / (config.control_hz * dt))))
        self._jacp = np.zeros((3, scene.model.nv))
        self._jacr = np.zeros((3, scene.model.nv))
        self._lo = np.array(scene.arm.lower)
        self._hi = np.array(scene.arm.upper)

    def joint_targets(self, delta_pos: np.ndarray, delta_rot: np.ndarray) -> np.ndarray:
        s = self.scene
        mujoco.mj_jacSite(s.model, s.data, self._jacp, self._jacr, s.tcp_site)
        jac = np.vstack([self._jacp[:, s.arm_dof_adr], self._jacr[:, s.arm_dof_adr]])
        err = np.concatenate([delta_pos, delta_rot])
        lam2 = self.config.damping ** 2
        jjt = jac @ jac.T + lam2 * np.eye(6)
        dq = jac.T @ np.linalg.solve(jjt, err)
        q = s.arm_qpos()
        if s.n_joints > 6:
            # the base mount turns with the workspace yaw, so the home posture is the same at every yaw
            dq += (np.eye(s.n_joints) - np.linalg.pinv(jac) @ jac) @ (self.config.nullspace_gain * (s.home_qpos - q))
        return np.clip(q + dq, self._lo, self._hi)

    def apply(self, action: np.ndarray) -> np.ndarray:
        """Validate (NaN/inf raise, out-of-range clip), set targets, step the physics."""
        a = schema.validate_action(action)
        s = self.scene
        s.data.ctrl[s.arm_act] = self.joint_targets(a[:3].astype(float), a[3:6].astype(float))
        s.data.ctrl[s.finger_act] = (a[6] + 1.0) / 2.0 * kin.FINGER_TRAVEL_M
        mujoco.mj_step(s.model, s.data, nstep=self.substeps)
        return a
