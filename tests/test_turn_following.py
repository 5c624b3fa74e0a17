"""benchmarks/turn_following.py: the census counts the expert's full-rate turns and scores a policy's
yaw against them (same sign, at least a quarter of the rate)."""

import numpy as np
from benchmark_scripts import load_benchmark

turns = load_benchmark("turn_following")


class FixedYaw:
    """A stand-in action expert that always turns at `yaw` rad per tick."""

    def __init__(self, yaw: float, horizon: int = 4):
        self.chunk = np.zeros((horizon, 7), np.float32)
        self.chunk[:, 5] = yaw

    def reset(self):
        pass

    def predict_chunk(self, points, colors, state, subtask):
        return self.chunk

    def executor(self, chunk):
        return chunk[0]


def test_summarize_scores_direction_and_rate():
    pairs = [(0.2, 0.06), (0.2, 0.04), (-0.2, -0.2), (-0.2, 0.2)]
    share, median = turns.summarize(pairs)
    assert share == 0.5                      # 0.06 and -0.2 follow; 0.04 is too slow, +0.2 the wrong way
    assert np.isclose(median, 0.13)


def test_census_finds_the_experts_turns_in_a_pick_and_a_still_hand_follows_none():
    census = turns.follow_census(FixedYaw(0.0), "PickRedCube", range(1000, 1001), dict(n_points=64, image_size=32))
    pairs = census["pick"]
    assert len(pairs) > 0 and all(abs(e) >= turns.FULL_TURN_RAD for e, _ in pairs)
    assert turns.summarize(pairs) == (0.0, 0.0)
    # a hand turning the expert's way at full rate follows every one of them
    sign = np.sign(pairs[0][0])
    same = [(e, p) for e, p in turns.follow_census(FixedYaw(0.2 * sign), "PickRedCube", range(1000, 1001),
                                                   dict(n_points=64, image_size=32))["pick"]]
    assert turns.summarize(same)[0] == np.mean([np.sign(e) == sign for e, _ in same])


def test_when_the_policy_drives_a_hand_that_never_moves_keeps_being_asked_to_turn():
    """drive="policy": the labels come from the states the policy's own actions reach."""
    census = turns.follow_census(FixedYaw(0.0), "PickRedCube", range(1000, 1001), dict(n_points=64, image_size=32),
                                 drive="policy")
    taught = turns.follow_census(FixedYaw(0.0), "PickRedCube", range(1000, 1001), dict(n_points=64, image_size=32))
    assert len(census["pick"]) > len(taught["pick"])   # the expert turns a few ticks; a still hand is never turned
    assert turns.summarize(census["pick"]) == (0.0, 0.0)
