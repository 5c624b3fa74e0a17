"""Published kinematic parameters of the two arms, and a plain numpy forward kinematics.

The MJCF bodies in `assets/<arm>.xml` are generated from these tables (`arm_mjcf.py`), and a
test checks MuJoCo's forward kinematics against `forward()` here, so "Panda kinematics"
and "UR5e kinematics" are facts that can fail, not labels.

Panda: Craig's modified DH convention (Franka's documentation).
UR5e: standard DH convention (Universal Robots' published parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PI = np.pi


@dataclass(frozen=True)
class ArmSpec:
    name: str
    convention: str  # "modified" (Craig) or "standard" DH
    a: tuple[float, ...]  # metres
    d: tuple[float, ...]  # metres
    alpha: tuple[float, ...]  # radians
    lower: tuple[float, ...]  # joint limits, radians
    upper: tuple[float, ...]
    flange: tuple[float, float, float]  # (a, d, alpha) of the fixed flange transform after the last joint
    hand_yaw: float  # gripper mounting rotation about the flange z axis
    ik_seed: tuple[float, ...]  # elbow-up configuration near the home pose

    @property
    def n_joints(self) -> int:
        return len(self.a)


PANDA = ArmSpec(
    name="panda",
    convention="modified",
    a=(0.0, 0.0, 0.0, 0.0825, -0.0825, 0.0, 0.088),
    d=(0.333, 0.0, 0.316, 0.0, 0.384, 0.0, 0.0),
    alpha=(0.0, -PI / 2, PI / 2, PI / 2, -PI / 2, PI / 2, PI / 2),
    lower=(-2.8973, -1.7628, -2.8973, -3.0718, -2.8973, -0.0175, -2.8973),
    upper=(2.8973, 1.7628, 2.8973, -0.0698, 2.8973, 3.7525, 2.8973),
    flange=(0.0, 0.107, 0.0),
    hand_yaw=-PI / 4,
    ik_seed=(0.0, -0.3, 0.0, -2.2, 0.0, 1.9, PI / 4),
)

UR5E = ArmSpec(
    name="ur5e",
    convention="standard",
    a=(0.0, -0.425, -0.3922, 0.0, 0.0, 0.0),
    d=(0.1625, 0.0, 0.0, 0.1333, 0.0997, 0.0996),
    alpha=(PI / 2, 0.0, 0.0, PI / 2, -PI / 2, 0.0),
    lower=(-2 * PI, -2 * PI, -PI, -2 * PI, -2 * PI, -2 * PI),
    upper=(2 * PI, 2 * PI, PI, 2 * PI, 2 * PI, 2 * PI),
    flange=(0.0, 0.0, 0.0),
    hand_yaw=0.0,
    ik_seed=(PI, -PI / 2, PI / 2, -PI / 2, -PI / 2, 0.0),
)

ARMS = {"panda": PANDA, "ur5e": UR5E}

#: Gripper geometry shared by both arms: tool centre point (between the finger pads) along
#: the flange z axis, and the travel of each finger.
TCP_OFFSET_M = 0.1034
FINGER_TRAVEL_M = 0.04


def get_arm(name: str) -> ArmSpec:
    if name not in ARMS:
        from vla_stack.schema import SchemaError

        raise SchemaError(f"robot: unknown arm {name!r}; valid: {sorted(ARMS)}")
    return ARMS[name]


def rot_x(t: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_z(t: float) -> np.ndarray:
    c, s = np.cos(t), np.sin(t)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def transform(r: np.ndarray, p) -> np.ndarray:
    t = np.eye(4)
    t[:3, :3] = r
    t[:3, 3] = p
    return t


def fixed_link_transforms(arm: ArmSpec) -> list[np.ndarray]:
    """The constant transform from each body to the next (joint angle excluded).

    Returned list has n_joints + 1 entries: [base->body1, body1->body2, ..., body_n->flange].
    A body's joint rotates about its own z axis, so the chain is
    T = F0 Rz(q1) F1 Rz(q2) ... Rz(qn) Fn.
    """
    n = arm.n_joints
    out = []
    if arm.convention == "modified":
        # Rx(alpha) Tx(a) Rz(q) Tz(d) = [Tx(a) Rx(alpha) Tz(d)] Rz(q)
        for i in range(n):
            a, d, al = arm.a[i], arm.d[i], arm.alpha[i]
            out.append(transform(rot_x(al), [a, -d * np.sin(al), d * np.cos(al)]))
        a, d, al = arm.flange
        out.append(transform(rot_x(al), [a, -d * np.sin(al), d * np.cos(al)]))
    elif arm.convention == "standard":
        # Rz(q) Tz(d) Tx(a) Rx(alpha) = Rz(q) [T(a, 0, d) Rx(alpha)]
        out.append(np.eye(4))
        for i in range(n):
            out.append(transform(rot_x(arm.alpha[i]), [arm.a[i], 0.0, arm.d[i]]))
        a, d, al = arm.flange
        out[-1] = out[-1] @ transform(rot_x(al), [a, -d * np.sin(al), d * np.cos(al)])
    else:
        raise ValueError(f"unknown DH convention {arm.convention!r}")
    return out


def tool_transform(arm: ArmSpec) -> np.ndarray:
    """Flange -> tool centre point: gripper mounting yaw, then the finger-pad offset."""
    return transform(rot_z(arm.hand_yaw), [0, 0, 0]) @ transform(np.eye(3), [0, 0, TCP_OFFSET_M])


def forward(arm: ArmSpec, q) -> np.ndarray:
    """Base -> tool centre point (4x4), straight from the DH table."""
    q = np.asarray(q, float)
    if q.shape != (arm.n_joints,):
        raise ValueError(f"{arm.name}: expected {arm.n_joints} joint angles, got shape {q.shape}")
    fixed = fixed_link_transforms(arm)
    t = fixed[0]
    for i in range(arm.n_joints):
        t = t @ transform(rot_z(q[i]), [0, 0, 0]) @ fixed[i + 1]
    return t @ tool_transform(arm)


def rotation_log(r: np.ndarray) -> np.ndarray:
    """Axis-angle vector of a rotation matrix (robust near 0 and pi)."""
    cos = np.clip((np.trace(r) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-7:
        return np.zeros(3)
    if np.pi - angle < 1e-4:
        # near pi: axis from the diagonal
        axis = np.sqrt(np.maximum((np.diag(r) + 1) / 2, 0))
        k = int(np.argmax(axis))
        axis[(k + 1) % 3] = np.copysign(axis[(k + 1) % 3], r[k, (k + 1) % 3] + r[(k + 1) % 3, k])
        axis[(k + 2) % 3] = np.copysign(axis[(k + 2) % 3], r[k, (k + 2) % 3] + r[(k + 2) % 3, k])
        return axis / np.linalg.norm(axis) * angle
    w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
    return w / (2 * np.sin(angle)) * angle


def jacobian(arm: ArmSpec, q, eps: float = 1e-6) -> np.ndarray:
    """Numerical 6xN Jacobian of the tool pose (linear; angular in the base frame)."""
    t0 = forward(arm, q)
    jac = np.zeros((6, arm.n_joints))
    for i in range(arm.n_joints):
        dq = np.array(q, float)
        dq[i] += eps
        t1 = forward(arm, dq)
        jac[:3, i] = (t1[:3, 3] - t0[:3, 3]) / eps
        jac[3:, i] = rotation_log(t1[:3, :3] @ t0[:3, :3].T) / eps
    return jac


def solve_ik(arm: ArmSpec, target: np.ndarray, seed=None, iters: int = 300, damping: float = 1e-3) -> np.ndarray:
    """Damped least squares on the DH model (used offline to find home poses)."""
    q = np.array(arm.ik_seed if seed is None else seed, float)
    lo, hi = np.array(arm.lower), np.array(arm.upper)
    for _ in range(iters):
        t = forward(arm, q)
        err = np.concatenate([target[:3, 3] - t[:3, 3], rotation_log(target[:3, :3] @ t[:3, :3].T)])
        if np.linalg.norm(err) < 1e-9:
            break
        j = jacobian(arm, q)
        q = np.clip(q + j.T @ np.linalg.solve(j @ j.T + damping * np.eye(6), err), lo, hi)
    return q


#: Tool pointing straight down (tool z = -base z), fingers closing along base y.
R_DOWN = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
HOME_TCP = np.array([0.4, 0.0, 0.3])


def home_pose() -> np.ndarray:
    return transform(R_DOWN, HOME_TCP)
