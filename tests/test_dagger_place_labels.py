"""The DAgger place-label census (benchmarks/dagger_place_labels.py): how it sorts labels, and that its
"before" expert is the scripted expert without its off-path rules."""

import numpy as np
from benchmark_scripts import load_benchmark

from vla_stack import schema
from vla_stack.sim.env import TabletopEnv

census = load_benchmark("dagger_place_labels")


def label(dz: float, grip: float) -> np.ndarray:
    return np.array([0, 0, dz, 0, 0, 0, grip], np.float32)


def test_labels_are_sorted_by_gripper_and_climb():
    assert census.kind(label(0.0, 1.0)) == "open_in_place"
    assert census.kind(label(0.012, 1.0)) == "open_rising"
    assert census.kind(label(0.03, -1.0)) == "climb_closed"
    assert census.kind(label(-0.01, -1.0)) == "other_closed"


def test_over_the_bowl_at_release_height_the_expert_lets_go_where_the_old_one_climbed_back():
    env = TabletopEnv(task="PutRedInBowl", obs_keys=(schema.OBS_STATE,))
    env.reset(seed=3)
    before = census.expert_without_off_path_rules(env.scene, env.facts)

    def labels():   # both experts label the same state, each with its own phase machine
        st = env.task.subtasks[env.progress.index]
        return env.expert_action(), before.act(st, env.progress.index, env.steps)

    for _ in range(300):   # the expert carries the cube until it is over the bowl
        labels()
        _, _, _, _, info = env.step(env.expert_action())
        over_bowl = np.linalg.norm(env.scene.tcp_pos()[:2] - env.scene.body_pos("bowl")[:2]) < 0.01
        if "bowl" in info[schema.INFO_SUBTASK] and over_bowl:
            break
    while env.scene.tcp_pos()[2] > env.scene.body_pos("bowl")[2] + 0.041:   # a policy goes straight down
        labels()
        env.step(label(-0.02, -1.0))
    now, old = labels()
    assert env.facts.holding() == "red_cube"
    assert census.kind(now) != "climb_closed" and census.kind(old) == "climb_closed"
