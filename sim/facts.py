"""Success predicates: each fact of the skill grammar evaluated on simulator state."""

from __future__ import annotations

import numpy as np

from vla_stack.sim.scene import CUBE_HALF, CUBES, Scene

DRAWER_OPEN_M = 0.14  # opening at which the drawer counts as open
DRAWER_CLOSED_M = 0.015
LIFT_M = 0.05  # cube bottom above the table
BOWL_RADIUS_M = 0.086
PUSH_MIN_M = 0.06
#: a place / stack is finished once the hand has let go and backed off: no finger pad touches the cube
#: and the tool centre is this far from the cube's centre (3 cm clear of its faces)
HAND_CLEAR_M = 0.05


class FactChecker:
    """Evaluates facts; keeps the little history some facts need (button latch, push origins)."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.button_pressed = False
        self.push_origin: dict[str, np.ndarray] = {}

    def reset(self) -> None:
        self.button_pressed = False
        self.scene.set_button_lit(False)
        self.remember_push_origins()

    def remember_push_origins(self) -> None:
        self.push_origin = {c: self.scene.body_pos(c) for c in CUBES}

    def update(self) -> None:
        """Call once per control step: latches the button."""
        if not self.button_pressed and self.scene.button_depth() > 0.007:
            self.button_pressed = True
            self.scene.set_button_lit(True)

    def holding(self) -> str:
        for c in CUBES:
            if self.scene.is_grasped(c):
                return c
        return "nothing"

    def hand_clear_of(self, cube: str) -> bool:
        s = self.scene
        g = s.geom[cube]
        touching = s.in_contact(g, s.geom["finger_left_pad"]) or s.in_contact(g, s.geom["finger_right_pad"])
        return not touching and float(np.linalg.norm(s.tcp_pos() - s.body_pos(cube))) >= HAND_CLEAR_M

    def holds(self, key: str, value: str) -> bool:
        s = self.scene
        if key == "holding":
            return self.holding() == value
        if key == "drawer":
            o = s.drawer_opening()
            return o >= DRAWER_OPEN_M if value == "open" else o <= DRAWER_CLOSED_M
        if key == "button":
            return self.button_pressed
        if key in CUBES:
            p = s.body_pos(key)
            if value == "lifted":
                return p[2] - CUBE_HALF > LIFT_M
            if value == "in bowl":
                b = s.body_pos("bowl")
                return bool(np.linalg.norm(p[:2] - b[:2]) < BOWL_RADIUS_M and p[2] < 0.07)
            if value == "in drawer":
                return self.in_drawer(p)
            if value.startswith("on "):
                other = s.body_pos(value[3:])
                dz = p[2] - other[2]
                return bool(np.linalg.norm(p[:2] - other[:2]) < 0.025 and 0.03 < dz < 0.05
                            and other[2] < CUBE_HALF + 0.01)
            if value.startswith("pushed toward "):
                target = s.body_pos(value[len("pushed toward "):])
                o = self.push_origin[key]
                v = target[:2] - o[:2]
                v = v / max(np.linalg.norm(v), 1e-9)
                return bool(np.dot(p[:2] - o[:2], v) > PUSH_MIN_M and p[2] < CUBE_HALF + 0.01)
        raise KeyError(f"unknown fact {key} = {value}")

    def in_drawer(self, p: np.ndarray) -> bool:
        s = self.scene
        d = s.body["drawer"]
        local = s.data.xmat[d].reshape(3, 3).T @ (p - s.data.xpos[d])
        return bool(abs(local[0] + 0.005) < 0.09 and abs(local[1]) < 0.098 and 0.0 < local[2] < 0.07)

    def all_hold(self, facts: dict[str, str]) -> bool:
        return all(self.holds(k, v) for k, v in facts.items())
