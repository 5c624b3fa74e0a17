"""Scripted experts: one small phase machine per skill, driven by privileged state.

They are the stand-in teleoperator for demonstrations. Each phase moves the tool centre
point to a waypoint computed from the *current* object poses (so a nudged object is
followed) and ends on a state condition or a time-out. The phase machine restarts
whenever the current subtask changes, so an expert always follows the task's true state.
Actions are schema actions (base-frame delta pose + gripper), like a policy's.
"""

from __future__ import annotations

import numpy as np

from vla_stack import schema
from vla_stack.sim import kinematics as kin
from vla_stack.sim.facts import FactChecker
from vla_stack.sim.scene import CUBE_HALF, CUBES, DISTRACTORS, Scene
from vla_stack.sim.skills import Subtask

HAND_HALF_SPAN = 0.09  # the hand's half length along the finger closing axis
LEAVE_Z = 0.11
SAFE_Z = 0.23  # travel height of the tool centre point: a held cube clears the cabinet
MAX_STEP_M = 0.03  # expert speed limit per control tick (0.6 m/s at 20 Hz)
SLOW_STEP_M = 0.012
RELEASE_TOL_M = 0.008  # a place lets go this close to its release point
MAX_YAW_STEP_RAD = 0.2  # turn of the hand about the vertical per tick (the action limit; see benchmarks/yaw_turn_ablation.py)
OPEN, HALF, CLOSED = 1.0, -0.1, -1.0
#: skills done with an empty hand: a cube still held is first put back where it started
EMPTY_HANDED = ("open", "close", "press", "push")


def wrap(a: float) -> float:
    return float((a + np.pi) % (2 * np.pi) - np.pi)


class ScriptedExpert:
    def __init__(self, scene: Scene, facts: FactChecker):
        self.scene = scene
        self.facts = facts
        self.reset()

    def reset(self) -> None:
        self._key = None
        self._push_yaw = None
        self._goto(0)
        self._memo: tuple | None = None
        self.release_point: np.ndarray | None = None  # where the current place / stack lets go (None: other skills)

    # ------------------------------------------------------------------ helpers
    def reachable_yaw(self, base: float, period: float) -> float:
        """base + k * period closest to the current tool yaw that the wrist can turn to.

        With the tool pointing down, the last joint turns the tool yaw one-for-one (with
        the opposite sign, both arms), so the candidate must keep it inside its limits."""
        s = self.scene
        current, q_last = self.tool_yaw(), s.arm_qpos()[-1]
        lo, hi = s.arm.lower[-1] + 0.25, s.arm.upper[-1] - 0.25
        k0 = np.round((current - base) / period)
        cands = sorted((base + (k0 + k) * period for k in range(-4, 5)), key=lambda y: abs(y - current))
        for yaw in cands:
            if lo <= q_last - (yaw - current) <= hi:
                return float(current + (yaw - current))
        return float(cands[0])

    def clear_yaw(self, where: np.ndarray, face_yaw: float, exclude: tuple[str, ...] = (),
                  keep_order: bool = False) -> float:
        """A cube-face-aligned tool yaw whose hand (long along the closing axis) stays clear
        of fixtures and other objects; the nearest to the current yaw when both are clear."""
        s = self.scene
        obstacles = [(s.body_pos("cabinet"), 0.17), (s.data.site_xpos[s.handle_site], 0.04), (s.body_pos("bowl"), 0.09),
                     (s.body_pos("button"), 0.045)]
        obstacles += [(s.body_pos(n), 0.03) for n in CUBES + DISTRACTORS if n not in exclude]
        current = self.tool_yaw()
        candidates = [self.reachable_yaw(face_yaw + k * np.pi / 2, np.pi) for k in (0, 1)]
        if not keep_order:
            candidates.sort(key=lambda y: abs(wrap(y - current)))

        def clearance(yaw: float) -> float:
            axis = np.array([np.sin(yaw), -np.cos(yaw)])
            ends = [where[:2] + sgn * axis * HAND_HALF_SPAN for sgn in (-1, 1)]
            return min(np.linalg.norm(e - o[:2]) - r for e in ends for o, r in obstacles)

        scores = [clearance(y) for y in candidates]
        if scores[0] > 0.02 or scores[0] >= scores[1]:
            return candidates[0]
        return candidates[1]

    def tool_yaw(self) -> float:
        r = self.scene.tcp_mat()
        return float(np.arctan2(r[1, 0], r[0, 0]))

    def move(self, target: np.ndarray, yaw: float, grip: float, max_step: float = MAX_STEP_M) -> np.ndarray:
        s = self.scene
        dpos = target - s.tcp_pos()
        n = np.linalg.norm(dpos)
        if n > max_step:
            dpos *= max_step / n
        # step the yaw in the direction chosen (reachable_yaw may unwind the wrist the long way)
        current = self.tool_yaw()
        r_des = kin.rot_z(current + np.clip(yaw - current, -0.5, 0.5)) @ kin.R_DOWN
        drot = np.clip(kin.rotation_log(r_des @ s.tcp_mat().T), -0.2, 0.2)
        drot[2] = np.clip(drot[2], -MAX_YAW_STEP_RAD, MAX_YAW_STEP_RAD)
        a = np.concatenate([dpos, drot, [grip]]).astype(np.float32)
        return np.clip(a, schema.ACTION_LOW, schema.ACTION_HIGH)

    def travel(self, target: np.ndarray, yaw: float, grip: float) -> tuple[np.ndarray, bool]:
        """Go to `target` over the obstacles: up to the travel height, across, then down.

        Returns (action, arrived)."""
        tcp = self.scene.tcp_pos()
        if np.linalg.norm(target[:2] - tcp[:2]) > 0.03:
            if tcp[2] < SAFE_Z - 0.03:
                return self.move(np.array([tcp[0], tcp[1], SAFE_Z]), yaw, grip), False
            return self.move(np.array([target[0], target[1], max(SAFE_Z, target[2])]), yaw, grip), False
        # arrive turned as well: descending with the hand still turning can hit a fixture
        arrived = np.linalg.norm(target - tcp) < 0.012 and abs(wrap(yaw - self.tool_yaw())) < 0.08
        return self.move(target, yaw, grip), arrived

    def leave_grip(self, grip: float) -> float:
        """Keep the fingers open while still low after a release, so a cube just let go of
        is not grasped again when the next skill wants a closed or half-open gripper."""
        return OPEN if self.scene.tcp_pos()[2] < LEAVE_Z and self.scene.gripper_opening() > 0.045 else grip

    def _advance(self, cond: bool, timeout: int | None = None) -> None:
        if cond or (timeout is not None and self.ticks >= timeout):
            self._goto(self.phase + 1)

    def _goto(self, phase: int) -> None:
        self.phase, self.ticks, self._anchor = phase, 0, None

    def anchor(self) -> np.ndarray:
        """Where the tool was when this phase began (held targets do not drift)."""
        if self._anchor is None:
            self._anchor = self.scene.tcp_pos()
        return self._anchor.copy()

    def hold(self, yaw: float, grip: float) -> np.ndarray:
        return self.move(self.anchor(), yaw, grip)

    def rise(self, yaw: float, grip: float, max_step: float = SLOW_STEP_M) -> np.ndarray:
        a = self.anchor()
        return self.move(np.array([a[0], a[1], SAFE_Z]), yaw, grip, max_step)

    # ------------------------------------------------------------------ entry point
    def act(self, subtask: Subtask | None, subtask_index: int, step: int) -> np.ndarray:
        """The expert's action for this control step (idempotent within a step)."""
        if self._memo is not None and self._memo[0] == step:
            return self._memo[1].copy()
        held = self.facts.holding() if subtask is not None and subtask.skill in EMPTY_HANDED else None
        key = (subtask_index, subtask, held)
        if key != self._key:
            self._key = key
            self._goto(0)
            self.release_point = None
        if subtask is None:  # task done: hold still, gripper open
            a = self.hold(self.tool_yaw(), OPEN)
        elif held not in (None, "nothing"):  # e.g. the drawer was shut while a cube was held
            a = self._set_down(held)
            self.ticks += 1
        else:
            a = getattr(self, f"_{subtask.skill}")(subtask)
            self.ticks += 1
        self._memo = (step, a)
        return a.copy()

    # ------------------------------------------------------------------ skills
    def _pick(self, st: Subtask) -> np.ndarray:
        s = self.scene
        p = s.body_pos(st.object)
        yaw = self.clear_yaw(p, s.body_yaw(st.object), exclude=(st.object,))
        if self.phase == 0:  # above the cube, open
            a, ok = self.travel(p + [0, 0, 0.1], yaw, OPEN)
            self._advance(ok and s.gripper_opening() > 0.07, timeout=120)
            return a
        if self.phase == 1:  # down around it
            target = np.array([p[0], p[1], max(p[2] - 0.004, CUBE_HALF - 0.004)])
            a = self.move(target, yaw, OPEN, SLOW_STEP_M * 1.5)
            self._advance(np.linalg.norm(target - s.tcp_pos()) < 0.008, timeout=40)
            return a
        if self.phase == 2:  # close
            a = self.hold(yaw, CLOSED)
            self._advance(self.ticks >= 6)
            return a
        # lift; a missed grasp starts over
        if s.gripper_opening() < 0.01 and not s.is_grasped(st.object):
            self._goto(0)
        return self.rise(yaw, CLOSED, SLOW_STEP_M * 1.5)

    def _release_at(self, place: np.ndarray, yaw: float) -> np.ndarray:
        """Carry the held cube above `place` (its centre), lower it, let go, back off."""
        s = self.scene
        self.release_point = place.copy()
        phase = self.off_path_phase(place)
        if phase > self.phase:
            self._goto(phase)
        if self.phase == 0:
            a, ok = self.travel(place + [0, 0, 0.08], yaw, CLOSED)
            self._advance(ok, timeout=150)
            return a
        if self.phase == 1:
            a = self.move(place, yaw, CLOSED, SLOW_STEP_M)
            self._advance(np.linalg.norm(place - s.tcp_pos()) < RELEASE_TOL_M
                          or (self.ticks >= 40 and self.time_out_lets_go(place)))
            return a
        if self.phase == 2:
            a = self.hold(yaw, OPEN)
            self._advance(self.ticks >= 6)
            return a
        if self.still_holding():   # open where the hand is now (a policy may have moved it off the anchor)
            return self.move(s.tcp_pos(), yaw, OPEN)
        return self.rise(yaw, OPEN)

    def still_holding(self) -> bool:
        """Past the release's hold-open ticks yet a cube is still in the hand: a policy kept it closed
        (DAgger labels its states). Open in place; rising with it would lift the cube out again."""
        return self.facts.holding() != "nothing"

    def off_path_phase(self, place: np.ndarray) -> int:
        """The phase for a hand found near the release point off this expert's own path: a policy drove it
        there (DAgger labels its states). Before the approach waypoint (phase 0; 8 cm up on its own path; not
        on its first tick, where its own path can start near the point, a cube picked beside it), within
        5 cm of the point in xy and from 8 mm below it to 4 cm above: let go within RELEASE_TOL_M of
        it (2), else close in on it (1, which lets go within RELEASE_TOL_M). Over the point (2 cm) and lower
        than that: let go. Otherwise the phases would first climb back to the waypoint (or, 3 cm off, to the
        travel height) under a closed hand, for up to 190 ticks of time-outs: such labels taught policies
        to hover over the bowl or beside the cube to stack on, and to hold the cube in the bowl."""
        tcp = self.scene.tcp_pos()
        off_xy = np.linalg.norm(tcp[:2] - place[:2])
        low_near = off_xy < 0.05 and place[2] - RELEASE_TOL_M < tcp[2] < place[2] + 0.04
        if self.phase == 0 and self.ticks > 0 and low_near:
            return 2 if np.linalg.norm(tcp - place) < RELEASE_TOL_M else 1
        if self.phase < 2 and off_xy < 0.02 and tcp[2] < place[2] - RELEASE_TOL_M:
            return 2
        return self.phase

    def time_out_lets_go(self, place: np.ndarray) -> bool:
        """Past phase 1's time-out (something under the cube) let go only over the release point (2 cm; its
        own path never times out there): a hand held off it (a policy's, in DAgger) is labelled to close in,
        not to drop the cube beside the bowl or the cube to stack on."""
        return bool(np.linalg.norm(place[:2] - self.scene.tcp_pos()[:2]) < 0.02)

    def _set_down(self, cube: str) -> np.ndarray:
        """Put a held cube back on the table where it was when the task began (a free spot)."""
        spot = self.facts.push_origin[cube].copy()
        spot[2] = CUBE_HALF + 0.006
        return self._release_at(spot, self.tool_yaw())

    def _place(self, st: Subtask) -> np.ndarray:
        s = self.scene
        if st.target == "bowl":
            bowl = s.body_pos("bowl")
            place = bowl + [0, 0, 0.005 + CUBE_HALF + 0.012]
            inside = [s.body_pos(c) for c in CUBES if c != st.object and self.facts.holds(c, "in bowl")]
            if inside:  # make room: the far side from the cube already there
                away = bowl[:2] - inside[0][:2]
                n = np.linalg.norm(away)
                away = away / n if n > 1e-3 else -bowl[:2] / np.linalg.norm(bowl[:2])
                place[:2] = inside[0][:2] + away * 0.05
            return self._release_at(place, self.tool_yaw())
        # drawer: the part that is out of the cabinet; the hand spans the drawer's width
        place = s.data.site_xpos[s.slot_site] + [0, 0, CUBE_HALF + 0.012]
        axis = s.body_mat("drawer")[:, 0]
        return self._release_at(place, self.reachable_yaw(np.arctan2(axis[1], axis[0]), np.pi))

    def _stack(self, st: Subtask) -> np.ndarray:
        s = self.scene
        place = s.body_pos(st.target) + [0, 0, 2 * CUBE_HALF + 0.006]
        yaw = self.clear_yaw(place, s.body_yaw(st.target), exclude=(st.object, st.target))
        return self._release_at(place, yaw)

    def _drawer(self, opening_goal: float) -> np.ndarray:
        """Grasp the handle, slide it to `opening_goal`, let go."""
        s = self.scene
        handle = s.data.site_xpos[s.handle_site].copy()
        axis = -s.body_mat("drawer")[:, 0]  # opening direction, world frame
        # fingers straddle the handle's stem, closing across the pull direction
        yaw = self.reachable_yaw(np.arctan2(axis[1], axis[0]), np.pi)
        if self.phase == 0:
            a, ok = self.travel(handle + [0, 0, 0.08], yaw, self.leave_grip(HALF))
            self._advance(ok, timeout=150)
            return a
        if self.phase == 1:
            target = handle + [0, 0, 0.004]
            a = self.move(target, yaw, HALF, SLOW_STEP_M * 1.5)
            self._advance(np.linalg.norm(target - s.tcp_pos()) < 0.008, timeout=40)
            return a
        if self.phase == 2:
            a = self.move(handle + [0, 0, 0.004], yaw, CLOSED)
            self._advance(self.ticks >= 6)
            return a
        if self.phase == 3:
            goal = handle + axis * (opening_goal - s.drawer_opening())
            goal[2] = handle[2] + 0.004
            a = self.move(goal, yaw, CLOSED, SLOW_STEP_M)
            self._advance(abs(opening_goal - s.drawer_opening()) < 0.008, timeout=60)
            return a
        return self.rise(yaw, OPEN)  # let go and back off upwards

    def _open(self, st: Subtask) -> np.ndarray:
        return self._drawer(0.168)

    def _close(self, st: Subtask) -> np.ndarray:
        return self._drawer(0.0)

    def _press(self, st: Subtask) -> np.ndarray:
        s = self.scene
        top = s.body_pos("button_cap") + [0, 0, 0.016]
        yaw = self.tool_yaw()
        if self.phase == 0:
            a, ok = self.travel(top + [0, 0, 0.08], yaw, self.leave_grip(CLOSED))
            self._advance(ok, timeout=150)
            return a
        if self.phase == 1:
            a = self.move(top - [0, 0, 0.02], yaw, CLOSED, SLOW_STEP_M)
            self._advance(self.facts.button_pressed, timeout=40)
            return a
        return self.rise(yaw, CLOSED)

    def _push(self, st: Subtask) -> np.ndarray:
        s = self.scene
        origin = self.facts.push_origin[st.object]
        target = s.body_pos(st.target)
        v = target[:2] - origin[:2]
        v = np.append(v / np.linalg.norm(v), 0.0)
        p = s.body_pos(st.object)
        start = np.array([p[0], p[1], CUBE_HALF]) - v * (CUBE_HALF + 0.03)
        if self.phase == 0 or self._push_yaw is None:  # finger pads across the path if the hand fits
            self._push_yaw = self.clear_yaw(start, np.arctan2(v[1], v[0]), exclude=(st.object,), keep_order=True)
        yaw = self._push_yaw
        if self.phase == 0:
            a, ok = self.travel(start + [0, 0, 0.08], yaw, self.leave_grip(CLOSED))
            self._advance(ok, timeout=150)
            return a
        if self.phase == 1:
            a = self.move(start, yaw, CLOSED, SLOW_STEP_M * 1.5)
            self._advance(np.linalg.norm(start - s.tcp_pos()) < 0.01, timeout=40)
            return a
        if self.phase == 2:
            # chase a point just inside the cube's near face: pushes it along v and
            # re-centres the fingers behind it when it slides sideways
            goal = np.array([p[0], p[1], CUBE_HALF]) - v * (CUBE_HALF + 0.002)
            a = self.move(goal, yaw, CLOSED, SLOW_STEP_M)
            self._advance(np.dot(p[:2] - origin[:2], v[:2]) > 0.1, timeout=80)
            return a
        return self.rise(yaw, CLOSED)
