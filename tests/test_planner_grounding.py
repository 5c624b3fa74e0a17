"""Object-centric grounding: segment labels from geometry, segment summaries, and fact heads
that each see only their own evidence."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_stack import schema  # noqa: E402
from vla_stack.planner.grounding import Fact, GroundingConfig, GroundingNet  # noqa: E402
from vla_stack.planner.objects import SEGMENTS, segment_features  # noqa: E402

CHECKPOINT = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "planner_checkpoint"
RED = SEGMENTS.index("red cube")


def test_segment_summary_is_count_centroid_and_spread_of_members():
    pts = torch.tensor([[[0.1, 0.0, 0.02], [0.3, 0.0, 0.02], [0.5, 0.5, 0.0]]])
    cols = torch.rand(1, 3, 3)
    w = torch.zeros(1, 3, len(SEGMENTS))
    w[0, :2, RED] = 1.0  # two red-cube points; nothing is the bowl
    f = segment_features(pts, cols, w)[0]
    assert torch.expm1(f[RED, 0]).item() == pytest.approx(2.0)
    torch.testing.assert_close(f[RED, 2:5], torch.tensor([2.0, 0.0, 0.2]))  # centroid, decimetres
    torch.testing.assert_close(f[RED, 5:8], torch.tensor([1.0, 0.0, 0.0]))  # spread along x only
    assert f[SEGMENTS.index("bowl")].abs().sum() == 0  # invisible: all zero


def test_each_head_sees_only_its_own_evidence():
    torch.manual_seed(0)
    net = GroundingNet(["red cube", "bowl", "drawer"], GroundingConfig(width=8, k=4, head_width=16))
    facts = [Fact("in", "red cube", "bowl"), Fact("held")]
    idx = net.fact_index(facts)
    seg, state = torch.randn(1, len(SEGMENTS) + 1, 13), torch.randn(1, schema.STATE_DIM)
    moved = state.clone()
    moved[:, schema.STATE_EE_POS] += 0.3  # the hand moves elsewhere: "in bowl" must not care
    a, b = net.judge(seg, state, seg, idx), net.judge(seg, moved, seg, idx)
    assert a[0, 0] == b[0, 0]
    assert a[0, 1] != b[0, 1]  # "held" does look at the hand


def test_occluded_entity_is_not_judgeable():
    seg = torch.zeros(1, len(SEGMENTS) + 1, 13)
    seg[0, RED, 0] = np.log1p(2.0)  # two red-cube points: the arm hides the rest
    seg[0, SEGMENTS.index("bowl"), 0] = np.log1p(150.0)
    net = GroundingNet(["red cube", "bowl"], GroundingConfig(width=8, k=4, head_width=8))
    ok = net.judgeable(seg, net.fact_index([Fact("in", "red cube", "bowl"), Fact("hand_empty")]))
    assert ok.tolist() == [[False, True]]


def test_shipped_segmenter_agrees_with_geometry_labels_on_a_new_layout():
    from vla_stack.planner.checkpoint import load
    from vla_stack.planner.point_labels import point_labels
    from vla_stack.planner.rollouts import EnvConfig, make_env

    _, net, _ = load(CHECKPOINT)
    env = make_env("PressButtonThenPutRedInBowl", EnvConfig())
    obs, _ = env.reset(seed=777)  # a layout no training episode used (seeds 1000+)
    u = env.unwrapped
    truth = point_labels(u.scene.model, u.scene.data, obs[schema.OBS_POINTS])
    env.close()
    with torch.no_grad():
        pred = net.segmenter(torch.as_tensor(obs[schema.OBS_POINTS])[None],
                             torch.as_tensor(obs[schema.OBS_COLORS])[None]).argmax(-1)[0].numpy()
    for name in ("red cube", "green cube", "blue cube", "bowl", "button"):
        c = SEGMENTS.index(name)
        assert (truth == c).sum() >= 4, name
        iou = ((pred == c) & (truth == c)).sum() / ((pred == c) | (truth == c)).sum()
        assert iou > 0.8, (name, iou)


def test_on_is_ruled_out_unless_the_cube_is_raised_above_the_other():
    """A cube dropped on the table beside the other is not on it, whatever the learned head says."""
    from vla_stack.planner.grounding import ON_MIN_RISE_M, RELATIONS, on_not_raised
    from vla_stack.planner.objects import FEATURE_DIM, GEOMETRY_SCALE

    facts = [Fact("on", "green cube", "blue cube"), Fact("in", "green cube", "bowl")]
    idx = torch.tensor([[RELATIONS.index(f.relation), SEGMENTS.index(f.a), SEGMENTS.index(f.b)] for f in facts])
    seg = torch.zeros(2, len(SEGMENTS) + 1, FEATURE_DIM)
    seg[:, SEGMENTS.index("blue cube"), 4] = 0.02 * GEOMETRY_SCALE                  # centroid heights (dm)
    seg[0, SEGMENTS.index("green cube"), 4] = 0.06 * GEOMETRY_SCALE                 # stacked: 4 cm higher
    seg[1, SEGMENTS.index("green cube"), 4] = (0.02 + ON_MIN_RISE_M / 2) * GEOMETRY_SCALE   # beside it
    veto = on_not_raised(seg, idx)
    assert veto.tolist() == [[False, False], [True, False]]
