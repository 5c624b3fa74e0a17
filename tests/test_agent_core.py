"""The agent with fake parts: it never waits for slow ones, and stops whenever in doubt."""

import math
import time

import numpy as np
import pytest

from vla_stack import schema
from vla_stack.agent import Agent, AgentConfig
from vla_stack.agent.config import sim_safety

MOVE = np.array([0.01, 0, 0, 0, 0, 0, -1], np.float32)


class FakePlanner:
    """Plans `plan`; judges a subtask done on its `done_after`-th check; each call sleeps `delay_s`."""

    def __init__(self, plan=("open the drawer", "press the button"), delay_s=0.0, done_after=2, fail=False):
        self.plan, self.delay_s, self.done_after, self.fail = list(plan), delay_s, done_after, fail
        self.checks = 0

    def reset(self, instruction):
        if "banana" in instruction:
            raise schema.SchemaError("instruction: the scene holds no 'banana'")
        self.checks = 0

    def next_subtask(self, obs, history):
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("LLM kept answering nonsense")
        return self.plan[len(history)] if len(history) < len(self.plan) else schema.DONE_TOKEN

    def subtask_done(self, obs, subtask):
        time.sleep(self.delay_s)
        self.checks += 1
        return self.checks % self.done_after == 0


class FakeWorldModel:
    def __init__(self, delay_s=0.0):
        self.delay_s, self.calls = delay_s, []

    def predict_subgoal(self, rgb, depth, subtask):
        time.sleep(self.delay_s)
        self.calls.append(subtask)
        return np.full((8, 8, 3), len(subtask), np.uint8), np.full(4, float(len(subtask)), np.float32)


class FakePolicy:
    def __init__(self, action=MOVE):
        self.action, self.calls, self.resets = action, [], 0

    def reset(self):
        self.resets += 1

    def step(self, points, colors, state, subtask, subgoal_latent=None):
        self.calls.append((subtask, None if subgoal_latent is None else float(subgoal_latent[0])))
        return self.action


def observation(rng=np.random.default_rng(0)):
    state = np.zeros(schema.STATE_DIM, np.float32)
    state[schema.STATE_EE_POS] = (0.5, 0.0, 0.3)
    state[schema.STATE_EE_QUAT] = (1, 0, 0, 0)
    pts = (rng.uniform(-0.2, 0.2, (64, 3)) + (0.5, 0, 0.2)).astype(np.float32)
    return {schema.OBS_POINTS: pts, schema.OBS_COLORS: np.full((64, 3), 0.5, np.float32), schema.OBS_STATE: state,
            schema.OBS_RGB: np.zeros((8, 8, 3), np.uint8), schema.OBS_DEPTH: np.ones((8, 8), np.float32)}


def run_until(agent, predicate, timeout_s=5.0, obs=None):
    obs = obs or observation()
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        action, info = agent.step(obs)
        if predicate(action, info):
            return action, info
        time.sleep(0.005)
    raise AssertionError(f"condition not reached in {timeout_s} s (last info: {info})")


def test_step_stays_fast_while_planner_and_world_model_are_slow():
    planner, policy = FakePlanner(delay_s=0.4), FakePolicy()
    agent = Agent(planner, FakeWorldModel(delay_s=0.4), policy)
    agent.reset("open the drawer and press the button")
    latencies, statuses = [], []
    t_end = time.monotonic() + 1.2  # three planner calls' worth of time
    while time.monotonic() < t_end:
        action, info = agent.step(observation())
        latencies.append(info.latency_ms)
        statuses.append(info.status)
        time.sleep(0.01)
    # a step that waited for the planner or the world model would take >= 400 ms
    assert max(latencies) < 100, f"a control tick blocked: max {max(latencies):.1f} ms"
    assert statuses[0] == "waiting" and "acting" in statuses
    agent.close()


def test_no_subtask_yet_means_zero_motion_holding_the_gripper():
    agent = Agent(FakePlanner(delay_s=0.5), FakeWorldModel(), FakePolicy())
    agent.reset("open the drawer")
    action, info = agent.step(observation())
    assert info.status == "waiting" and info.subtask is None
    np.testing.assert_array_equal(action[:6], 0)
    assert action[6] == schema.GRIPPER_OPEN
    agent.close()


def test_subtasks_advance_with_the_planners_judgement_and_end_in_a_stop():
    policy, wm = FakePolicy(), FakeWorldModel()
    agent = Agent(FakePlanner(done_after=2), wm, policy, AgentConfig(planner_every_ticks=1))
    agent.reset("open the drawer and press the button")
    seen = []
    action, info = run_until(agent, lambda a, i: seen.append(i.subtask) or i.status == "done")
    assert [s for k, s in enumerate(seen) if s is not None and (k == 0 or seen[k - 1] != s)] == [
        "open the drawer", "press the button", schema.DONE_TOKEN]
    assert info.subtasks_done == 2
    np.testing.assert_array_equal(action[:6], 0)
    assert action[6] == MOVE[6]  # done: hold what the hand holds
    # the policy received each subtask's own subgoal latent (len(text)), never another's
    for subtask, latent in policy.calls:
        assert latent is None or latent == float(len(subtask))
    assert {s for s, lat in policy.calls if lat is not None} <= {"open the drawer", "press the button"}
    assert wm.calls[:1] == ["open the drawer"]
    agent.close()


def test_once_done_an_open_hand_backs_off_upward_then_holds():
    """A place ends with the open hand next to the cube it let go of: the agent lifts it clear before it
    holds still (held still there, the hand stays on the cube; the sim counts no release)."""
    from vla_stack.ros2_nodes.safety import DONE_BACK_OFF_MAX_TICKS

    open_hand = np.array([0.0, 0, -0.005, 0, 0, 0, schema.GRIPPER_OPEN], np.float32)
    agent = Agent(FakePlanner(plan=("put the red cube in the bowl",), done_after=2), FakeWorldModel(),
                  FakePolicy(open_hand), AgentConfig(planner_every_ticks=1))
    agent.reset("put the red cube in the bowl")
    run_until(agent, lambda a, i: i.status == "done")
    # this observation's hand never moves: the rise, measured, stops at its tick bound
    after = np.stack([agent.step(observation())[0] for _ in range(DONE_BACK_OFF_MAX_TICKS + 5)])
    assert (after[:, 6] == schema.GRIPPER_OPEN).all()
    assert (after[:, [0, 1, 3, 4, 5]] == 0).all() and (after[:, 2] >= 0).all()   # only up
    assert after[:, 2].sum() >= 0.04                                               # clear of the cube
    np.testing.assert_array_equal(after[-3:, :6], 0)                               # then holds still
    agent.close()


class UndoablePlanner(FakePlanner):
    """Reads progress from the 'scene': once `undone`, the first subtask is needed again (a cube fell off)."""

    undone = False

    def next_subtask(self, obs, history):
        return self.plan[0] if self.undone else super().next_subtask(obs, history)


@pytest.mark.parametrize("recheck", [True, False])
def test_after_done_the_planner_is_asked_again_and_undone_work_is_taken_up(recheck):
    planner = UndoablePlanner(plan=("stack the green cube on the blue cube",), done_after=1)
    agent = Agent(planner, FakeWorldModel(), FakePolicy(), AgentConfig(recheck_after_done=recheck))
    agent.reset("stack the green cube on the blue cube")
    run_until(agent, lambda a, i: i.status == "done")
    planner.undone = True
    if recheck:
        _, info = run_until(agent, lambda a, i: i.status == "acting")
        assert info.subtask == "stack the green cube on the blue cube"
    else:
        with pytest.raises(AssertionError, match="not reached"):
            run_until(agent, lambda a, i: i.status == "acting", timeout_s=0.5)
    agent.close()


def test_subgoal_image_is_reported_for_the_current_subtask():
    agent = Agent(FakePlanner(done_after=10**6), FakeWorldModel(), FakePolicy())
    agent.reset("open the drawer")
    _, info = run_until(agent, lambda a, i: i.subgoal_rgb is not None)
    assert info.subtask == "open the drawer" and info.subgoal_rgb[0, 0, 0] == len("open the drawer")
    agent.close()


def test_planner_failure_latches_a_stop_until_reset():
    planner = FakePlanner(fail=True)
    agent = Agent(planner, FakeWorldModel(), FakePolicy())
    agent.reset("open the drawer")
    action, info = run_until(agent, lambda a, i: i.status == "failed")
    assert "LLM kept answering nonsense" in info.reason
    np.testing.assert_array_equal(action[:6], 0)
    for _ in range(5):
        _, info = agent.step(observation())
        assert info.status == "failed"
    planner.fail = False
    agent.reset("open the drawer")
    run_until(agent, lambda a, i: i.status == "acting")
    agent.close()


@pytest.mark.parametrize("field,bad,named", [
    (schema.OBS_POINTS, np.full((64, 3), np.nan, np.float32), "points"),
    (schema.OBS_STATE, np.zeros(3, np.float32), "state"),
])
def test_bad_observation_stops_and_names_the_field(field, bad, named):
    agent = Agent(FakePlanner(), FakeWorldModel(), FakePolicy(), AgentConfig(planner_every_ticks=1))
    agent.reset("open the drawer")
    run_until(agent, lambda a, i: i.status == "acting")
    obs = observation()
    obs[field] = bad
    action, info = agent.step(obs)
    assert info.status == "stopped" and named in info.reason and "STOP" in info.safety
    np.testing.assert_array_equal(action[:6], 0)
    agent.close()


def test_non_finite_policy_action_is_never_executed():
    bad = MOVE.copy()
    bad[0] = np.nan
    agent = Agent(FakePlanner(), FakeWorldModel(), FakePolicy(bad), AgentConfig(planner_every_ticks=1))
    agent.reset("open the drawer")
    action, info = run_until(agent, lambda a, i: i.subtask is not None)
    assert info.status == "stopped" and "bad action" in info.reason
    assert np.all(np.isfinite(action)) and not np.any(action[:6])
    agent.close()


def test_flat_mode_conditions_the_policy_on_the_instruction():
    policy = FakePolicy()
    agent = Agent(None, None, policy, AgentConfig(mode="flat"))
    agent.reset("put the blue cube in the bowl")
    action, info = agent.step(observation())
    assert info.status == "acting" and policy.calls == [("put the blue cube in the bowl", None)]
    np.testing.assert_allclose(action, MOVE)
    agent.close()


def test_refused_instruction_raises_before_any_motion():
    agent = Agent(FakePlanner(), FakeWorldModel(), FakePolicy())
    with pytest.raises(schema.SchemaError, match="banana"):
        agent.reset("put the banana in the bowl")
    with pytest.raises(RuntimeError, match="reset"):
        agent.step(observation())
    with pytest.raises(schema.SchemaError, match="instruction"):
        agent.reset("   ")
    agent.close()


def test_estop_overrides_the_policy_until_released():
    agent = Agent(FakePlanner(), FakeWorldModel(), FakePolicy(), AgentConfig(planner_every_ticks=1))
    agent.reset("open the drawer")
    run_until(agent, lambda a, i: i.status == "acting")
    agent.estop("test button")
    action, info = agent.step(observation())
    assert info.status == "stopped" and "e-stop" in info.safety and not np.any(action[:6])
    agent.release_estop()
    run_until(agent, lambda a, i: i.status == "acting")
    agent.close()


def test_sim_safety_box_turns_with_the_workspace():
    base = sim_safety(0.0)
    turned = sim_safety(math.pi)
    assert turned.workspace_min_m[0] == pytest.approx(-base.workspace_max_m[0])
    assert turned.workspace_max_m[0] == pytest.approx(-base.workspace_min_m[0])
    quarter = sim_safety(math.pi / 2)
    assert quarter.workspace_min_m[1] == pytest.approx(base.workspace_min_m[0])
    assert quarter.workspace_min_m[2] == base.workspace_min_m[2]


def test_mode_without_its_parts_is_refused():
    with pytest.raises(ValueError, match="planner"):
        Agent(None, FakeWorldModel(), FakePolicy())
    with pytest.raises(ValueError, match="world model"):
        Agent(FakePlanner(), None, FakePolicy(), AgentConfig(mode="full"))
    with pytest.raises(schema.SchemaError, match="mode"):
        Agent(FakePlanner(), None, FakePolicy(), AgentConfig(mode="nonsense"))


def test_given_the_first_observation_reset_plans_so_the_expert_acts_on_the_first_tick():
    """As in its demonstrations: no zero-motion ticks before the first subtask (in the sim the arm sags on them)."""
    policy = FakePolicy()
    agent = Agent(FakePlanner(delay_s=0.03), FakeWorldModel(), policy, AgentConfig(mode="no_world_model"))
    agent.reset("open the drawer and press the button", observation())
    action, info = agent.step(observation())
    assert (info.tick, info.status, info.subtask) == (1, "acting", "open the drawer")
    assert np.allclose(action, MOVE) and policy.calls[0][0] == "open the drawer"
    agent.close()


def test_without_an_observation_the_first_ticks_wait_for_the_planner_thread():
    agent = Agent(FakePlanner(delay_s=0.03), FakeWorldModel(), FakePolicy(), AgentConfig(mode="no_world_model"))
    agent.reset("open the drawer and press the button")
    action, info = agent.step(observation())
    assert info.status == "waiting" and not np.any(action[:6])
    agent.close()


def test_a_malformed_first_observation_is_left_to_the_first_step_to_reject():
    agent = Agent(FakePlanner(), FakeWorldModel(), FakePolicy(), AgentConfig(mode="no_world_model"))
    bad = observation()
    bad[schema.OBS_POINTS] = np.full((64, 3), np.nan, np.float32)
    agent.reset("open the drawer", bad)  # not planned on: no latched planner failure
    assert agent.subtask is None
    action, info = agent.step({schema.OBS_STATE: np.zeros(schema.STATE_DIM, np.float32)})
    assert info.status == "stopped" and "observation rejected" in info.reason and not np.any(action[:6])
    agent.close()
