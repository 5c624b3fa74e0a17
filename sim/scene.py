"""The MuJoCo model of one tabletop with one arm, and the randomised layout of its objects.

`Scene` owns the MjModel/MjData pair, the ids of everything the tasks refer to, and the
per-reset randomisation (object poses, distractor colours, lighting, camera jitter and the
`workspace_yaw` rotation of the whole world about the base's vertical axis). Layouts are
sampled in a canonical frame and then rotated, and the robot's base mount turns with them
(joint angles stay as at yaw 0), so a yaw-rotated episode is an exact rotated copy of the
yaw-0 one: turning joint 1 instead would leave the Panda's +-2.9 rad range at 180 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from vla_stack.sim import kinematics as kin

ASSETS = Path(__file__).resolve().parent / "assets"
CUBES = ("red_cube", "green_cube", "blue_cube")
DISTRACTORS = ("distractor_cylinder", "distractor_block")
FIXTURES = ("bowl", "cabinet", "button")
#: world-body geoms and lights that turn with `workspace_yaw` (the table is square, the
#: floor checkered: rotating them keeps the rendered images rotated copies too)
WORLD_GEOMS = ("table", "table_leg", "floor")
LIGHTS = ("key", "fill")
CUBE_HALF = 0.02
DRAWER_TRAVEL = 0.17
BUTTON_PRESS_DEPTH = 0.007
#: colours for distractors: never red, green or blue, so an instruction stays unambiguous
DISTRACTOR_HUES = ((0.10, 0.18), (0.45, 0.55), (0.75, 0.92))


def model_xml(robot: str) -> tuple[str, dict[str, bytes]]:
    kin.get_arm(robot)  # validates the name
    xml = (ASSETS / "tabletop.xml").read_text().replace("ROBOT_FILE", f"{robot}.xml")
    return xml, {f"{robot}.xml": (ASSETS / f"{robot}.xml").read_bytes()}


def build_model(robot: str) -> mujoco.MjModel:
    xml, assets = model_xml(robot)
    return mujoco.MjModel.from_xml_string(xml, assets)


def rot2d(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s], [s, c]])


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    import colorsys

    return np.array(colorsys.hsv_to_rgb(h, s, v))


@dataclass
class Layout:
    """Poses of everything movable at reset, in the canonical (un-rotated) frame."""

    xy: dict[str, np.ndarray] = field(default_factory=dict)  # body name -> (2,)
    yaw: dict[str, float] = field(default_factory=dict)


def _segment_distances(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip((p - a) @ ab / np.dot(ab, ab), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[:, None] * ab), axis=1)


def _segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ab = b - a
    t = np.clip(np.dot(p - a, ab) / np.dot(ab, ab), 0.0, 1.0)
    return float(np.linalg.norm(p - (a + t * ab)))


PUSH_PATH_M = 0.14


def _push_paths_clear(placed: dict[str, np.ndarray], lay: Layout) -> bool:
    """Every cube can be pushed towards the bowl and the button without hitting anything."""
    for cube in CUBES:
        p = placed[cube]
        for target in ("bowl", "button"):
            v = lay.xy[target] - p
            end = p + v / np.linalg.norm(v) * PUSH_PATH_M
            start = p - v / np.linalg.norm(v) * 0.05
            if np.linalg.norm(start - lay.xy["cabinet"]) < 0.27 or np.linalg.norm(start) < 0.3:
                return False  # the hand could not get behind the cube (cabinet, or too near the base)
            if target == "button" and _segment_distance(lay.xy["bowl"], p, end) < 0.15:
                return False
            if any(_segment_distance(q, p, end) < 0.075 for n, q in placed.items() if n != cube):
                return False
    return True


def sample_layout(rng: np.random.Generator) -> Layout:
    """Fixtures near their nominal places; cubes and distractors where nothing collides.

    Keep-out zones include the footprint of the fully open drawer, so every task (opening
    the drawer included) is feasible from every sampled layout.
    """
    lay = Layout()
    cab = np.array([0.55, 0.32]) + rng.uniform(-0.03, 0.03, 2)
    lay.xy["cabinet"] = cab
    # the front (local -x) faces the robot base, +- a little
    lay.yaw["cabinet"] = float(np.arctan2(cab[1], cab[0]) + rng.uniform(-0.12, 0.12))
    lay.xy["bowl"] = np.array([0.43, -0.37]) + rng.uniform(-0.03, 0.03, 2)
    lay.yaw["bowl"] = float(rng.uniform(-np.pi, np.pi))
    lay.xy["button"] = np.array([0.18, -0.43]) + rng.uniform(-0.03, 0.03, 2)
    lay.yaw["button"] = 0.0
    axis = -np.array([np.cos(lay.yaw["cabinet"]), np.sin(lay.yaw["cabinet"])])  # opening direction
    drawer_a, drawer_b = cab - axis * 0.11, cab + axis * (0.11 + DRAWER_TRAVEL + 0.06)
    movable = CUBES + DISTRACTORS
    for _ in range(1000):
        placed: dict[str, np.ndarray] = {}
        for name in movable:
            # a batch of candidates at once, checked with array ops; the first valid one wins
            c = np.stack([rng.uniform(0.27, 0.66, 64), rng.uniform(-0.25, 0.25, 64)], axis=1)
            ok = (
                (np.linalg.norm(c, axis=1) > 0.32)
                & (_segment_distances(c, drawer_a, drawer_b) > 0.19)
                & (np.linalg.norm(c - cab, axis=1) > (0.28 if name in CUBES else 0.22))
                & (np.linalg.norm(c - lay.xy["bowl"], axis=1) > (0.25 if name in CUBES else 0.17))
                & (np.linalg.norm(c - lay.xy["button"], axis=1) > 0.15)
            )
            for q in placed.values():
                ok &= np.linalg.norm(c - q, axis=1) > 0.095
            if not ok.any():
                break
            placed[name] = c[int(np.argmax(ok))]
        if len(placed) == len(movable) and _push_paths_clear(placed, lay):
            break
    else:  # pragma: no cover - the region is large enough; this guards the loop
        raise RuntimeError("could not place objects without overlap")
    for name, p in placed.items():
        lay.xy[name] = p
        lay.yaw[name] = float(rng.uniform(-np.pi / 4, np.pi / 4))
    return lay


class Scene:
    """One arm on the tabletop; ids and state accessors used by controller, skills, expert."""

    def __init__(self, robot: str = "panda"):
        self.arm = kin.get_arm(robot)
        self.robot = robot
        self.model = build_model(robot)
        self.data = mujoco.MjData(self.model)
        m = self.model
        name2id = lambda t, n: mujoco.mj_name2id(m, t, n)  # noqa: E731
        self.n_joints = self.arm.n_joints
        self.arm_qpos_adr = np.array([m.jnt_qposadr[name2id(mujoco.mjtObj.mjOBJ_JOINT, f"joint{i + 1}")]
                                      for i in range(self.n_joints)])
        self.arm_dof_adr = np.array([m.jnt_dofadr[name2id(mujoco.mjtObj.mjOBJ_JOINT, f"joint{i + 1}")]
                                     for i in range(self.n_joints)])
        self.arm_act = np.array([name2id(mujoco.mjtObj.mjOBJ_ACTUATOR, f"act_joint{i + 1}") for i in range(self.n_joints)])
        self.finger_act = np.array([name2id(mujoco.mjtObj.mjOBJ_ACTUATOR, f"act_finger_{s}") for s in ("left", "right")])
        self.finger_qpos_adr = np.array([m.jnt_qposadr[name2id(mujoco.mjtObj.mjOBJ_JOINT, f"finger_{s}")]
                                         for s in ("left", "right")])
        self.tcp_site = name2id(mujoco.mjtObj.mjOBJ_SITE, "tcp")
        self.handle_site = name2id(mujoco.mjtObj.mjOBJ_SITE, "handle_center")
        self.slot_site = name2id(mujoco.mjtObj.mjOBJ_SITE, "drawer_slot")
        self.body = {n: name2id(mujoco.mjtObj.mjOBJ_BODY, n) for n in
                     CUBES + DISTRACTORS + FIXTURES + ("drawer", "button_cap", "left_finger", "right_finger", "hand")}
        self.geom = {n: name2id(mujoco.mjtObj.mjOBJ_GEOM, n) for n in
                     CUBES + DISTRACTORS + ("finger_left_pad", "finger_right_pad", "button_cap", "table")}
        self.free_qpos_adr = {n: m.jnt_qposadr[name2id(mujoco.mjtObj.mjOBJ_JOINT, n)] for n in CUBES + DISTRACTORS}
        self.drawer_qpos_adr = m.jnt_qposadr[name2id(mujoco.mjtObj.mjOBJ_JOINT, "drawer")]
        self.button_qpos_adr = m.jnt_qposadr[name2id(mujoco.mjtObj.mjOBJ_JOINT, "button")]
        self.base_body = name2id(mujoco.mjtObj.mjOBJ_BODY, "robot_base")
        self.world_geoms = [name2id(mujoco.mjtObj.mjOBJ_GEOM, n) for n in WORLD_GEOMS]
        m.geom_sameframe[self.world_geoms] = 0  # the compiler marked them "aligned with the world": not once turned
        self.lights = [name2id(mujoco.mjtObj.mjOBJ_LIGHT, n) for n in LIGHTS]
        self.key_light = self.lights[0]
        self.scene_cam = name2id(mujoco.mjtObj.mjOBJ_CAMERA, "scene")
        self.front_cam = name2id(mujoco.mjtObj.mjOBJ_CAMERA, "front")
        home_id = name2id(mujoco.mjtObj.mjOBJ_NUMERIC, "home_qpos")
        adr = m.numeric_adr[home_id]
        self.home_qpos = m.numeric_data[adr: adr + m.numeric_size[home_id]].copy()
        # nominal values that randomisation perturbs
        self._cam_pos0 = {c: m.cam_pos[c].copy() for c in (self.scene_cam, self.front_cam)}
        self._cam_quat0 = {c: m.cam_quat[c].copy() for c in (self.scene_cam, self.front_cam)}
        self._light_dir0 = {i: m.light_dir[i].copy() for i in self.lights}
        self._light_pos0 = {i: m.light_pos[i].copy() for i in self.lights}
        self._geom_pos0 = {g: m.geom_pos[g].copy() for g in self.world_geoms}
        self._geom_quat0 = {g: m.geom_quat[g].copy() for g in self.world_geoms}
        self._light_diffuse0 = m.light_diffuse[self.key_light].copy()
        self._button_rgba_up = m.geom_rgba[self.geom["button_cap"]].copy()
        self.button_rgba_pressed = np.array([0.15, 0.85, 0.2, 1.0], np.float32)
        self.workspace_yaw = 0.0

    # ------------------------------------------------------------------ reset / randomise
    def reset(self, rng: np.random.Generator, workspace_yaw: float = 0.0, *, drawer_opening: float = 0.0,
              randomize_visuals: bool = True) -> Layout:
        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        self.workspace_yaw = float(workspace_yaw)
        lay = sample_layout(rng)
        r = rot2d(workspace_yaw)
        for name in FIXTURES:
            b = self.body[name]
            m.body_pos[b, :2] = r @ lay.xy[name]
            m.body_quat[b] = yaw_quat(lay.yaw[name] + workspace_yaw)
        for name in CUBES + DISTRACTORS:
            adr = self.free_qpos_adr[name]
            z = m.geom_size[self.geom[name]][2 if name != "distractor_cylinder" else 1]
            d.qpos[adr: adr + 3] = [*(r @ lay.xy[name]), z]
            d.qpos[adr + 3: adr + 7] = yaw_quat(lay.yaw[name] + workspace_yaw)
        # the robot's base mount turns with the layout; the arm starts at home as at yaw 0
        m.body_quat[self.base_body] = yaw_quat(workspace_yaw)
        for g in self.world_geoms:
            m.geom_pos[g] = self._rotate(self._geom_pos0[g])
            mujoco.mju_mulQuat(m.geom_quat[g], yaw_quat(workspace_yaw), self._geom_quat0[g])
        q = self.home_qpos.copy()
        d.qpos[self.arm_qpos_adr] = q
        d.ctrl[self.arm_act] = q
        d.qpos[self.finger_qpos_adr] = kin.FINGER_TRAVEL_M
        d.ctrl[self.finger_act] = kin.FINGER_TRAVEL_M
        d.qpos[self.drawer_qpos_adr] = drawer_opening
        # cameras that look at the layout turn with it
        for cam in (self.scene_cam, self.front_cam):
            pos, quat = self._cam_pos0[cam].copy(), self._cam_quat0[cam].copy()
            if randomize_visuals and cam == self.scene_cam:
                pos = pos + rng.uniform(-0.01, 0.01, 3)
                jitter = np.zeros(4)
                axis = rng.normal(size=3)
                mujoco.mju_axisAngle2Quat(jitter, axis / np.linalg.norm(axis), rng.uniform(0, 0.02))
                mujoco.mju_mulQuat(quat, quat, jitter)
            pos[:2] = r @ pos[:2]
            mujoco.mju_mulQuat(quat, yaw_quat(workspace_yaw), quat)
            m.cam_pos[cam], m.cam_quat[cam] = pos, quat / np.linalg.norm(quat)
        if randomize_visuals:
            for name in DISTRACTORS:
                lo, hi = DISTRACTOR_HUES[rng.integers(len(DISTRACTOR_HUES))]
                m.geom_rgba[self.geom[name], :3] = _hsv_to_rgb(rng.uniform(lo, hi), rng.uniform(0.4, 0.9), rng.uniform(0.6, 1.0))
            m.light_diffuse[self.key_light] = self._light_diffuse0 * rng.uniform(0.6, 1.4)
        for light in self.lights:  # lights turn with the layout, after the canonical-frame jitter
            ld = self._light_dir0[light]
            if randomize_visuals and light == self.key_light:
                ld = ld + rng.uniform(-0.25, 0.25, 3)
            m.light_dir[light] = self._rotate(ld / np.linalg.norm(ld))
            m.light_pos[light] = self._rotate(self._light_pos0[light])
        self.set_button_lit(False)
        mujoco.mj_forward(m, d)
        return lay

    def _rotate(self, v: np.ndarray) -> np.ndarray:
        """A world-frame vector turned by the current workspace yaw about the vertical axis."""
        return np.array([*(rot2d(self.workspace_yaw) @ v[:2]), v[2]])

    def set_button_lit(self, pressed: bool) -> None:
        self.model.geom_rgba[self.geom["button_cap"]] = self.button_rgba_pressed if pressed else self._button_rgba_up

    # ------------------------------------------------------------------ state accessors
    def tcp_pos(self) -> np.ndarray:
        return self.data.site_xpos[self.tcp_site].copy()

    def tcp_mat(self) -> np.ndarray:
        return self.data.site_xmat[self.tcp_site].reshape(3, 3).copy()

    def tcp_quat(self) -> np.ndarray:
        q = np.zeros(4)
        mujoco.mju_mat2Quat(q, self.data.site_xmat[self.tcp_site])
        return q

    def arm_qpos(self) -> np.ndarray:
        return self.data.qpos[self.arm_qpos_adr].copy()

    def gripper_opening(self) -> float:
        """Distance between the finger pads, metres."""
        return float(self.data.qpos[self.finger_qpos_adr].sum())

    def body_pos(self, name: str) -> np.ndarray:
        return self.data.xpos[self.body[name]].copy()

    def body_mat(self, name: str) -> np.ndarray:
        return self.data.xmat[self.body[name]].reshape(3, 3).copy()

    def body_yaw(self, name: str) -> float:
        r = self.body_mat(name)
        return float(np.arctan2(r[1, 0], r[0, 0]))

    def hand_yaw_off_faces(self, cube: str) -> float:
        """The hand's yaw from the nearest face direction of a cube, radians in [-pi/4, pi/4): 0 is a
        square grasp; near +-pi/4 the fingers would close on two edges."""
        r = self.tcp_mat()
        rel = np.arctan2(r[1, 0], r[0, 0]) - self.body_yaw(cube)
        return float((rel + np.pi / 4) % (np.pi / 2) - np.pi / 4)

    def drawer_opening(self) -> float:
        return float(self.data.qpos[self.drawer_qpos_adr])

    def button_depth(self) -> float:
        return float(-self.data.qpos[self.button_qpos_adr])

    def in_contact(self, geom_a: int, geom_b: int) -> bool:
        d = self.data
        for i in range(d.ncon):
            c = d.contact[i]
            if (c.geom1 == geom_a and c.geom2 == geom_b) or (c.geom1 == geom_b and c.geom2 == geom_a):
                return True
        return False

    def is_grasped(self, obj: str) -> bool:
        """Both finger pads touch the object *from either side*: the fingers are held apart
        by it (closed fingers pushing a face touch it with both pads too)."""
        g = self.geom[obj]
        return (self.gripper_opening() > 0.02 and self.in_contact(g, self.geom["finger_left_pad"])
                and self.in_contact(g, self.geom["finger_right_pad"]))
