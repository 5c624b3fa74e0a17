"""Random start poses for recorded episodes: the arm is first driven, unrecorded, to hover over a fixture
or object of the scene, turned and with its gripper set at random.

Why: every demonstration and DAgger episode began at the home pose, while inside a composition a skill
begins wherever the one before it left the hand. The held-out failures were exactly those hand-offs
(session 14, 28 episodes each 4 of 4: the drawer opened after a press, closed hand beside the button; the
button pressed after a place, open hand above the bowl). Starting some episodes from such states teaches
each skill from them without showing any held-out composition.
"""

from __future__ import annotations

import numpy as np

from vla_stack.sim.expert import CLOSED, HALF, OPEN
from vla_stack.sim.scene import CUBES

GRIPS = (OPEN, HALF, CLOSED)
HOVER_M = (0.05, 0.16)  # height of the hover point above the anchor
SPREAD_M = 0.05  # horizontal scatter about the anchor
MAX_TURN_RAD = np.pi / 2  # the hand turns up to this far from where it is


def anchors(scene) -> dict[str, np.ndarray]:
    """Where a skill can end: the button, the bowl, the drawer's handle and the cubes."""
    out = {"button": scene.body_pos("button_cap"), "bowl": scene.body_pos("bowl"),
           "handle": scene.data.site_xpos[scene.handle_site].copy()}
    out.update({c: scene.body_pos(c) for c in CUBES})
    return out


def random_start_target(scene, rng: np.random.Generator, tool_yaw: float) -> tuple[str, np.ndarray, float, float]:
    """(anchor name, tool target, yaw, gripper command) drawn at random."""
    named = anchors(scene)
    name = list(named)[rng.integers(len(named))]
    target = named[name] + np.array([*rng.uniform(-SPREAD_M, SPREAD_M, 2), rng.uniform(*HOVER_M)])
    yaw = tool_yaw + rng.uniform(-MAX_TURN_RAD, MAX_TURN_RAD)
    return name, target, float(yaw), float(GRIPS[rng.integers(len(GRIPS))])


def drive_to_random_start(env, rng: np.random.Generator, max_ticks: int = 40):
    """Step `env` (unrecorded) towards a random hover pose; returns (obs, info, ticks, anchor name), or
    None if the episode ended on the way (the caller resets again).

    Uses the expert's own travel (up, across, down), so the hand does not sweep objects off the table;
    stops on arrival or after `max_ticks`, wherever the hand then is."""
    sim_env = env.unwrapped
    expert = sim_env.expert
    name, target, yaw, grip = random_start_target(sim_env.scene, rng, expert.tool_yaw())
    obs = info = None
    ticks = 0
    for ticks in range(1, max_ticks + 1):
        action, arrived = expert.travel(target, yaw, grip)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return None
        if arrived:
            break
    expert.reset()  # the recorded part starts its phase machine afresh, as after a reset
    return obs, info, ticks, name


def reset_maybe_away(env, seed: int, rng: np.random.Generator | None):
    """env.reset(seed=seed) -> (obs, info), then, given `rng`, the unrecorded move to a random start pose
    (a move that ends the episode falls back to the plain reset)."""
    obs, info = env.reset(seed=seed)
    if rng is None:
        return obs, info
    moved = drive_to_random_start(env, rng)
    return (moved[0], moved[1]) if moved is not None else env.reset(seed=seed)
