"""The progress rule of the learned planner, with the grounding's judgements scripted:
the next subtask follows the last plan step whose expected facts hold in the scene."""

from pathlib import Path

import numpy as np
import pytest

from vla_stack import schema
from vla_stack.planner.grounding import Fact
from vla_stack.planner.learned import LearnedPlanner

CHECKPOINT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "planner_checkpoint"
OBS = {schema.OBS_POINTS: np.zeros((64, 3)), schema.OBS_COLORS: np.zeros((64, 3)),
       schema.OBS_STATE: np.zeros(schema.STATE_DIM)}
OPEN, CLOSED = Fact("open", "drawer"), Fact("closed", "drawer")
HELD, LIFTED, EMPTY = Fact("held"), Fact("lifted"), Fact("hand_empty")
IN_DRAWER = Fact("in", "green cube", "drawer")


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
    p.scene = scene
    return p


def step(planner, *facts, history=()):
    planner.scene["true"] = set(facts)
    return planner.next_subtask(OBS, list(history))


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


def test_done_judgement_is_all_effects_of_the_subtask(planner):
    planner.scene["true"] = {OPEN, HELD}
    assert not planner.subtask_done(OBS, "pick up the green cube")  # held but not lifted yet
    planner.scene["true"] = {OPEN, HELD, LIFTED}
    assert planner.subtask_done(OBS, "pick up the green cube")
