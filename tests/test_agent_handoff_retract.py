"""The hand-off retract (AgentConfig.handoff = "start_pose"): a subtask that ends with the hand open (a place)
is followed by the hand going back to where the instruction began, and the action expert, restarted, takes
over only there, as its demonstrations start."""

import numpy as np
import pytest

from vla_stack import schema
from vla_stack.agent import Agent, AgentConfig
from vla_stack.agent.handoff import ARRIVED_M, MAX_TICKS, STEP_RAD, Retract

PLAN = ("put the red cube in the bowl", "press the button")
START = np.array([0.4, 0.0, 0.3])


class ArmWorld:
    """An arm that goes exactly where it is told; the place counts as done on its 12th tick."""

    def __init__(self):
        self.ee, self.gripper, self.tick = START.copy(), schema.GRIPPER_OPEN, 0

    def obs(self):
        state = np.zeros(schema.STATE_DIM, np.float32)
        state[schema.STATE_EE_POS] = self.ee
        state[schema.STATE_EE_QUAT] = (1, 0, 0, 0)
        state[schema.STATE_GRIPPER] = self.gripper
        pts = np.random.default_rng(self.tick).uniform(0.2, 0.6, (64, 3)).astype(np.float32)
        return {schema.OBS_POINTS: pts, schema.OBS_COLORS: np.full((64, 3), 0.5, np.float32), schema.OBS_STATE: state}

    def step(self, action):
        self.tick += 1
        self.ee = self.ee + action[:3]
        self.gripper = float(action[6])


class Planner:
    def __init__(self, world):
        self.world = world

    def reset(self, instruction):
        pass

    def next_subtask(self, obs, history):
        return PLAN[len(history)] if len(history) < len(PLAN) else schema.DONE_TOKEN

    def subtask_done(self, obs, subtask):
        return subtask == PLAN[0] and self.world.tick >= 12


class Policy:
    """Places by going down and to the side; `grip` is the hand it ends the place with."""

    def __init__(self, grip):
        self.grip, self.calls, self.resets = grip, [], 0

    def reset(self):
        self.resets += 1

    def step(self, points, colors, state, subtask, subgoal_latent=None):
        self.calls.append((subtask, state[schema.STATE_EE_POS].copy()))
        action = np.zeros(schema.ACTION_DIM, np.float32)
        if subtask == PLAN[0]:
            action[:3] = (0.01, -0.02, -0.02)
            action[6] = self.grip
        return action


def run(handoff, grip=schema.GRIPPER_OPEN, ticks=60):
    world, policy = ArmWorld(), Policy(grip)
    agent = Agent(Planner(world), None, policy, AgentConfig(mode="no_world_model", handoff=handoff))
    agent.reset("put the red cube in the bowl, then press the button")
    try:
        for _ in range(ticks):
            action, _ = agent.step(world.obs())
            agent.wait_background(1.0)   # the planner answers every tick
            world.step(action)
    finally:
        agent.close()
    return policy


def test_after_an_open_hand_place_the_expert_starts_the_press_from_the_start_pose():
    policy = run("start_pose")
    press = [pos for subtask, pos in policy.calls if subtask == PLAN[1]]
    assert press, "the expert never got the press"
    assert np.linalg.norm(press[0] - START) < ARRIVED_M  # its first press observation is at the start pose
    assert policy.resets == 2  # Agent.reset, then once more when the retract ended


def test_without_the_retract_the_expert_presses_from_where_the_place_ended():
    policy = run("none")
    press = [pos for subtask, pos in policy.calls if subtask == PLAN[1]]
    assert np.linalg.norm(press[0] - START) > 0.2 and policy.resets == 1


def test_a_closed_hand_is_not_retracted():
    """A subtask that ends holding something (a pick) hands over at once."""
    policy = run("start_pose", grip=schema.GRIPPER_CLOSED)
    press = [pos for subtask, pos in policy.calls if subtask == PLAN[1]]
    assert np.linalg.norm(press[0] - START) > 0.2 and policy.resets == 1


UPRIGHT = np.array([1.0, 0, 0, 0])


def test_retract_rises_before_it_moves_across_and_turns_and_gives_up_in_time():
    turned = np.array([np.cos(0.4), 0, 0, np.sin(0.4)])  # 0.8 rad about z
    r = Retract(START, UPRIGHT, schema.GRIPPER_OPEN)
    first = r.action(np.array([0.6, -0.2, 0.05]), turned)
    assert first[0] == first[1] == 0 and first[2] > 0 and not first[3:6].any() and first[6] == schema.GRIPPER_OPEN
    high = r.action(np.array([0.6, -0.2, 0.29]), turned)  # up: across, turning back (-z) at STEP_RAD
    assert high[0] < 0 and high[1] > 0 and np.allclose(high[3:6], [0, 0, -STEP_RAD], atol=1e-6)
    stuck = np.array([0.6, -0.2, 0.05])  # an arm that does not move
    actions = [r.action(stuck, turned) for _ in range(MAX_TICKS + 5)]
    assert actions[-1] is None and sum(a is not None for a in actions) == MAX_TICKS - 2


def test_unknown_handoff_mode_is_refused():
    with pytest.raises(schema.SchemaError, match="agent.handoff"):
        AgentConfig(handoff="teleport").validate()


def test_a_state_without_an_orientation_ends_the_retract_instead_of_moving():
    r = Retract(START, UPRIGHT, schema.GRIPPER_OPEN)
    assert r.action(np.array([0.6, -0.2, 0.05]), np.zeros(4)) is None
