"""The progress rule of the learned planner, with the grounding's judgements scripted:
the next subtask follows the last plan step whose expected facts hold in the scene, the
subtask in progress stays current while it changes the scene, and a fact must be judged
true on several frames in a row before it counts."""

from pathlib import Path

import numpy as np
import pytest

from vla_stack import schema
from vla_stack.planner.grounding import Fact
from vla_stack.planner.learned import LearnedPlanner

CHECKPOINT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "planner_checkpoint"
OPEN, CLOSED = Fact("open", "drawer"), Fact("closed", "drawer")
HELD, LIFTED, EMPTY = Fact("held"), Fact("lifted"), Fact("hand_empty")
IN_DRAWER = Fact("in", "green cube", "drawer")


def frame(i: int, opening_m: float = 0.04) -> dict:
    """A distinct (dummy) observation: the planner judges each new frame once. The fingers are `opening_m`
    apart (0.04: around a cube)."""
    state = np.zeros(schema.STATE_DIM)
    state[0] = i
    state[schema.STATE_GRIPPER] = opening_m
    return {schema.OBS_POINTS: np.zeros((64, 3)), schema.OBS_COLORS: np.zeros((64, 3)), schema.OBS_STATE: state}


@pytest.fixture()
def planner(monkeypatch):
    p = LearnedPlanner.load(CHECKPOINT)
    scene = {"true": set()}

    def judged(observation):
        probs = {f: float(f in scene["true"]) for f in p.facts}
        # the real method's belief step: a closed drawer hides its content
        if OPEN in scene["true"]:
            p._belief[IN_DRAWER] = probs[IN_DRAWER]
        else:
            probs[IN_DRAWER] = p._belief.get(IN_DRAWER, 0.0)
        return probs

    monkeypatch.setattr(p, "fact_probabilities", judged)
    p.reset("put the green cube in the drawer")
    p.hold_checks = 1  # judge every frame on its own, except where a test says otherwise
    p.scene, p.frames = scene, 0
    return p


def step(planner, *facts, history=()):
    planner.scene["true"] = set(facts)
    planner.frames += 1
    return planner.next_subtask(frame(planner.frames), list(history))


def done(planner, subtask, *facts, opening_m=0.04):
    planner.scene["true"] = set(facts)
    planner.frames += 1
    return planner.subtask_done(frame(planner.frames, opening_m), subtask)


def test_put_in_drawer_progresses_and_finishes(planner):
    assert step(planner, CLOSED, EMPTY) == "open the drawer"
    assert step(planner, OPEN, EMPTY) == "pick up the green cube"
    assert step(planner, OPEN, HELD, LIFTED) == "put the green cube in the drawer"
    assert step(planner, OPEN, EMPTY, IN_DRAWER) == "close the drawer"
    # closed: the cube is no longer visible, but was seen in the drawer
    assert step(planner, CLOSED, EMPTY) == schema.DONE_TOKEN


def test_undone_work_is_reissued_and_done_work_skipped(planner):
    assert step(planner, OPEN, EMPTY) == "pick up the green cube"  # drawer open at reset: skipped
    hist = ["open the drawer"]
    assert step(planner, CLOSED, EMPTY, history=hist) == "open the drawer"  # pushed shut again
    assert step(planner, OPEN, EMPTY, history=hist) == "pick up the green cube"
    hist = ["open the drawer", "pick up the green cube"]
    assert step(planner, OPEN, EMPTY, history=hist) == "pick up the green cube"  # cube dropped


def test_subtask_in_progress_stays_current_while_it_changes_the_scene(planner):
    step(planner, CLOSED, EMPTY)
    step(planner, OPEN, EMPTY)
    step(planner, OPEN, HELD, LIFTED)
    assert step(planner, OPEN, EMPTY, IN_DRAWER) == "close the drawer"
    # half-way shut: neither open nor closed. Closing did that: not "open the drawer" again
    assert step(planner, EMPTY) == "close the drawer"
    assert step(planner, CLOSED, EMPTY) == schema.DONE_TOKEN


def test_placing_survives_a_flicker_of_the_grip_but_not_a_lost_cube(planner):
    planner.hold_checks = 3
    for _ in range(3):
        step(planner, OPEN, EMPTY)
    for _ in range(3):
        sub = step(planner, OPEN, HELD, LIFTED)
    assert sub == "put the green cube in the drawer"
    assert step(planner, OPEN, LIFTED) == "put the green cube in the drawer"  # grip misjudged once
    step(planner, OPEN, EMPTY)
    assert step(planner, OPEN, EMPTY) == "pick up the green cube"  # no cube in hand for 3 frames


def test_one_frame_misjudgement_does_not_end_the_task(planner):
    planner.hold_checks = 3
    planner.reset("close the drawer")
    assert step(planner, OPEN, EMPTY) == "close the drawer"
    assert step(planner, CLOSED, EMPTY) == "close the drawer"  # judged closed once: not yet DONE
    assert not done(planner, "close the drawer", EMPTY)
    assert not done(planner, "close the drawer", CLOSED, EMPTY)
    assert not done(planner, "close the drawer", CLOSED, EMPTY)
    assert done(planner, "close the drawer", CLOSED, EMPTY)  # three frames in a row
    assert step(planner, CLOSED, EMPTY) == schema.DONE_TOKEN


def test_done_judgement_is_all_effects_of_the_subtask(planner):
    assert not done(planner, "pick up the green cube", OPEN, HELD)  # held but not lifted yet
    assert done(planner, "pick up the green cube", OPEN, HELD, LIFTED)


def test_a_cube_dropped_on_the_way_ends_the_place_so_that_the_pick_is_named_again(planner):
    planner.hold_checks = 3
    put = "put the green cube in the drawer"
    for _ in range(3):
        step(planner, OPEN, HELD, LIFTED)
    # carried at speed, the grounding misjudges the grip: the fingers still hold the cube, so no drop
    for _ in range(3):
        assert not done(planner, put, OPEN, LIFTED)
    assert not done(planner, put, OPEN, EMPTY, opening_m=0.0)
    assert not done(planner, put, OPEN, EMPTY, opening_m=0.0)
    assert done(planner, put, OPEN, EMPTY, opening_m=0.0)  # fingers closed on nothing for 3 frames: dropped
    assert step(planner, OPEN, EMPTY, history=["open the drawer", "pick up the green cube", put]) == "pick up the green cube"


def test_a_release_opens_the_hand_and_is_not_a_drop(planner):
    planner.hold_checks = 3
    put = "put the green cube in the drawer"
    for _ in range(3):
        step(planner, OPEN, HELD, LIFTED)
    for _ in range(3):  # let go: the fingers open; done only once the cube is seen in the drawer
        assert not done(planner, put, OPEN, EMPTY, opening_m=0.08)
    for _ in range(2):
        assert not done(planner, put, OPEN, EMPTY, IN_DRAWER, opening_m=0.08)
    assert done(planner, put, OPEN, EMPTY, IN_DRAWER, opening_m=0.08)


def test_a_closed_hand_ends_only_subtasks_that_need_a_cube_in_it(planner):
    planner.hold_checks = 1
    assert not done(planner, "open the drawer", CLOSED, EMPTY, opening_m=0.0)
