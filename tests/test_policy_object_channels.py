"""Object channels: the subtask text names which points are "the object" and "the destination";
the masks match the world model's colour test, keep the encoder's symmetry, reach the
attention, and leave checkpoints from before the flag loading unchanged."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from e3nn import o3

from vla_stack import schema
from vla_stack.policy.config import PolicyConfig
from vla_stack.schema import SchemaError
from vla_stack.policy import ActionExpert, PolicyModel, load_checkpoint, save_checkpoint, tiny_config
from vla_stack.policy.object_channels import (OBJECT_COLORS, codes_for, object_codes, object_masks,
                                             object_masks_reference)
from vla_stack.policy.train import TrainConfig, train

from test_policy_equivariance import STATS, actions, random_inputs, transform

REPO = Path(__file__).resolve().parents[1]
ALL = tuple(OBJECT_COLORS)  # every object with a colour, the button included


def test_codes_name_the_object_then_the_destination_in_order_of_mention():
    codes = object_codes(["pick up the blue cube", "push the red cube toward the button",
                          "stack the green cube on the red cube", "open the drawer", "Put the Red Cube in the bowl"],
                         ALL)
    assert codes.shape == (5, 2, 4)
    np.testing.assert_allclose(codes[0, 0], [*OBJECT_COLORS["blue_cube"], 1.0])
    assert codes[0, 1].tolist() == [0, 0, 0, 0]  # pick has no destination
    np.testing.assert_allclose(codes[1, :, :3], [OBJECT_COLORS["red_cube"], OBJECT_COLORS["button"]])
    np.testing.assert_allclose(codes[2, :, :3], [OBJECT_COLORS["green_cube"], OBJECT_COLORS["red_cube"]])
    assert codes[3].sum() == 0  # the drawer has no colour of its own: never marked
    np.testing.assert_allclose(codes[4, :, :3], [OBJECT_COLORS["red_cube"], OBJECT_COLORS["bowl"]])
    with pytest.raises(TypeError, match="must be a string"):
        object_codes([None], ALL)


def test_the_button_is_unmarked_by_default_because_its_cap_is_the_red_cubes_red():
    default = PolicyConfig().marked_objects
    assert "button" not in default
    assert object_codes(["press the button"], default).sum() == 0
    push = object_codes(["push the red cube toward the button"], default)[0]
    np.testing.assert_allclose(push[0], [*OBJECT_COLORS["red_cube"], 1.0])
    assert push[1].sum() == 0
    # a checkpoint trained with the button marked keeps it (its config.json lists it)
    assert object_codes(["press the button"], (*default, "button"))[0, 0, 3] == 1.0
    with pytest.raises(SchemaError, match="marked_objects"):
        PolicyConfig(marked_objects=("red_cube", "purple_cube")).validate()


def test_a_target_only_object_is_marked_when_acted_on_and_never_as_the_destination():
    cfg = PolicyConfig(object_channels=True, marked_objects=(*PolicyConfig().marked_objects, "button"),
                       target_only_objects=("button",)).validate()
    press, push, place = codes_for(cfg, ["press the button", "push the red cube toward the button",
                                         "put the red cube in the bowl"])
    np.testing.assert_allclose(press[0], [*OBJECT_COLORS["button"], 1.0])
    np.testing.assert_allclose(push[0], [*OBJECT_COLORS["red_cube"], 1.0])
    assert push[1].sum() == 0  # as a checkpoint trained with the button unmarked saw it
    np.testing.assert_allclose(place[1], [*OBJECT_COLORS["bowl"], 1.0])  # other destinations unchanged
    with pytest.raises(SchemaError, match="target_only_objects"):
        PolicyConfig(target_only_objects=("button",)).validate()  # not marked at all


def test_masks_match_the_world_model_colour_test_and_mark_the_shaded_cube():
    g = np.random.default_rng(0)
    colors = g.integers(0, 256, (1, 400, 3)) / 255.0
    blue = np.asarray(OBJECT_COLORS["blue_cube"])
    colors[0, :20] = np.round(blue * g.uniform(0.3, 1.0, (20, 1)) * 255) / 255  # the blue cube, shaded
    codes = object_codes(["push the blue cube toward the bowl"], ALL)
    fast = object_masks(torch.from_numpy(colors).float(), torch.from_numpy(codes)).numpy()[0]
    ref = object_masks_reference(colors[0], codes[0])
    assert fast[:20, 0].all() and not fast[:20, 1].any()
    assert (fast == ref).mean() > 0.995  # float32 vs the uint8 image path: only points on the threshold may differ
    assert fast[20:, 0].mean() < 0.05  # random colours are rarely "blue cube"
    none = object_masks(torch.from_numpy(colors).float(), torch.from_numpy(object_codes(["open the drawer"], ALL)))
    assert none.sum() == 0


def test_object_channels_keep_the_encoder_equivariant():
    torch.manual_seed(0)
    model = PolicyModel(tiny_config(object_channels=True), STATS).double().eval()
    pts, cols, state, text = random_inputs()
    cols[..., :12, :] = torch.tensor(OBJECT_COLORS["red_cube"], dtype=torch.float64)  # some marked points
    objects = torch.from_numpy(object_codes(["pick up the red cube"], ALL)).double()[:, None].expand(2, 3, 2, 4)
    a = model.normalizer.unnormalize_action(model(pts, cols, state, text, objects=objects))
    unmarked = model.normalizer.unnormalize_action(model(pts, cols, state, text, objects=torch.zeros_like(objects)))
    assert (a - unmarked).abs().max() > 1e-4  # the channel changes the output, so it is really an input
    torch.manual_seed(7)
    R = o3.rand_matrix(dtype=torch.float64)
    pts2, state2 = transform(pts, state, R, torch.tensor([0.3, -0.8, 1.1], dtype=torch.float64))
    b = model.normalizer.unnormalize_action(model(pts2, cols, state2, text, objects=objects))
    assert torch.allclose(b[..., :3], a[..., :3] @ R.T, atol=1e-4, rtol=0)
    assert torch.allclose(b[..., 3:6], a[..., 3:6] @ R.T, atol=1e-4, rtol=0)
    assert torch.allclose(b[..., 6], a[..., 6], atol=1e-4, rtol=0)


def test_a_model_with_object_channels_refuses_to_run_without_codes():
    model = PolicyModel(tiny_config(object_channels=True), STATS).eval()
    pts, cols, state, text = (x.float() for x in random_inputs())
    with pytest.raises(schema.SchemaError, match="object_channels=true"):
        model(pts, cols, state, text)
    with pytest.raises(schema.SchemaError, match="must end in"):
        model(pts, cols, state, text, objects=torch.zeros(2, 3, 3, 4))


def test_without_the_flag_codes_are_ignored_and_old_configs_load(tmp_path):
    torch.manual_seed(0)
    model = PolicyModel(tiny_config(), STATS).double().eval()
    pts, cols, state, text = random_inputs()
    objects = torch.from_numpy(object_codes(["pick up the red cube"], ALL)).double()[:, None].expand(2, 3, 2, 4)
    assert torch.equal(actions(model, pts, cols, state, text), model.normalizer.unnormalize_action(
        model(pts, cols, state, text, objects=objects)))
    ckpt = save_checkpoint(tmp_path / "old", model.float())
    raw = json.loads((ckpt / "config.json").read_text())
    raw.pop("object_channels")  # as written before the flag existed
    (ckpt / "config.json").write_text(json.dumps(raw))
    loaded, _ = load_checkpoint(ckpt)
    assert loaded.cfg.object_channels is False


@pytest.mark.parametrize("ckpt", ["shipped/policy", "benchmarks/results/policy_train_single_skill/checkpoint"])
def test_the_committed_checkpoints_still_load_and_act(ckpt):
    """With and without the flag: a config.json from before it existed loads as off."""
    saved = json.loads((REPO / ckpt / "config.json").read_text())
    expert = ActionExpert.load(REPO / ckpt, text_encoder=lambda s: np.zeros(384, np.float32))
    assert expert.cfg.object_channels is saved.get("object_channels", False)
    g = np.random.default_rng(0)
    state = np.zeros(schema.STATE_DIM, np.float32)
    state[3] = 1.0
    action = expert.step(g.normal(0, 0.3, (256, 3)).astype(np.float32), g.random((256, 3), np.float32), state,
                         "pick up the red cube")
    assert action.shape == (7,) and np.isfinite(action).all()


def test_training_with_object_channels_feeds_each_subtask_its_codes(tmp_path):
    from vla_stack.datasets.layout import DatasetSpec
    from vla_stack.datasets.synthetic import write_synthetic

    root = tmp_path / "demos"
    write_synthetic(root, DatasetSpec(n_points=48, cameras={}), episodes=2, length=8)
    final = train(TrainConfig(dataset=root, out=tmp_path / "run", model=tiny_config(object_channels=True), steps=3,
                              batch_size=2, history=2, progress=False))
    expert = ActionExpert.load(final, text_encoder=lambda s: np.zeros(384, np.float32))
    assert expert.cfg.object_channels
    state = np.zeros(schema.STATE_DIM, np.float32)
    state[3] = 1.0
    cols = np.full((48, 3), 0.5, np.float32)
    cols[:8] = OBJECT_COLORS["blue_cube"]
    pts = np.random.default_rng(1).normal(0, 0.3, (48, 3)).astype(np.float32)
    assert np.isfinite(expert.step(pts, cols, state, "pick up the blue cube")).all()


def test_a_fresh_model_already_pools_one_head_onto_the_named_object():
    from vla_stack.policy.diagnose import attention_on_target

    torch.manual_seed(0)
    model = PolicyModel(tiny_config(object_channels=True), STATS).eval()
    g = torch.Generator().manual_seed(1)
    points = torch.rand(1, 300, 3, generator=g)
    cube = torch.tensor([0.5, 0.2, 0.1])
    points[0, :8] = cube + 0.01 * torch.rand(8, 3, generator=g)
    colors = torch.full((1, 300, 3), 0.5)
    colors[0, :8] = torch.tensor(OBJECT_COLORS["blue_cube"]) * 0.7  # shaded blue cube
    state = torch.zeros(1, schema.STATE_DIM)
    state[0, 3] = 1.0
    codes = torch.from_numpy(object_codes(["pick up the blue cube"], ALL))
    row = attention_on_target(model, points, colors, state, torch.randn(1, 384), cube, 0.03, codes)
    assert row["marked_on_target"] == 1.0 and row["marked_precision"] == 1.0
    assert row["mass"][0] > 0.9  # head 0 looks at the cube ...
    assert row["centroid_error_m"][0] < 0.02  # ... so its centroid is where the cube is
    assert row["mass"][1:].max() < 0.5  # the other heads are free (no destination named)


def red_cube_and_button_cap(g: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A scene's red points as the camera sees them: a 4 cm cube on the table (top face and one side, seen
    from top to bottom) and, 25 cm away, the button's flat cap (a 5.6 cm disc, 1.6 cm thick); a yellow bowl;
    grey table."""
    top = np.c_[g.uniform(-0.02, 0.02, (14, 2)) + [0.5, 0.0], np.full(14, 0.04)]
    side = np.c_[np.full(8, 0.48), g.uniform(-0.02, 0.02, 8), np.linspace(0.002, 0.038, 8) + g.uniform(-0.002, 0.002, 8)]
    ang, r = g.uniform(0, 2 * np.pi, 14), 0.028 * np.sqrt(g.uniform(0, 1, 14))
    cap = np.c_[0.3 + r * np.cos(ang), -0.15 + r * np.sin(ang), g.uniform(0.02, 0.036, 14)]
    bowl = np.c_[g.uniform(-0.1, 0.1, (40, 2)) + [0.2, 0.3], g.uniform(0.0, 0.045, 40)]
    table = np.c_[g.uniform(-0.5, 0.5, (60, 2)) + [0.4, 0.0], np.zeros(60)]
    points = np.concatenate([top, side, cap, bowl, table])
    colors = np.concatenate([np.tile(OBJECT_COLORS["red_cube"], (36, 1)), np.tile(OBJECT_COLORS["bowl"], (40, 1)),
                             np.full((60, 3), 0.5)])
    return torch.from_numpy(points)[None], torch.from_numpy(colors)[None]


def test_solid_cube_masks_mark_the_red_cube_and_not_the_flat_red_button_cap():
    points, colors = red_cube_and_button_cap(np.random.default_rng())
    codes = torch.from_numpy(object_codes(["stack the blue cube on the red cube", "put the red cube in the bowl"],
                                          ALL)).double()
    points, colors = points.expand(2, -1, -1), colors.expand(2, -1, -1)
    cube, cap, bowl = slice(0, 22), slice(22, 36), slice(36, 76)
    plain = object_masks(colors, codes)
    assert plain[0, cube, 1].all() and plain[0, cap, 1].all()  # the colour test alone marks both
    solid = object_masks(colors, codes, points, solid_cubes=True)
    assert solid[0, cube, 1].all() and not solid[0, cap, 1].any()  # "on the red cube": the destination
    assert solid[1, cube, 0].all() and not solid[1, cap, 0].any()  # "the red cube": the object acted on
    assert torch.equal(solid[1, :, 1], plain[1, :, 1]) and solid[1, bowl, 1].all()  # the bowl is no cube: kept whole
    # heights are along gravity: turning the workspace about the vertical (its yaw) changes nothing
    c, s = np.cos(1.1), np.sin(1.1)
    yaw = torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    assert torch.equal(object_masks(colors, codes, points @ yaw.T + 0.3, solid_cubes=True), solid)
    with pytest.raises(ValueError, match="needs the points"):
        object_masks(colors, codes, solid_cubes=True)


def test_solid_cube_masks_are_a_config_flag_a_fine_tune_can_switch_on():
    with pytest.raises(SchemaError, match="solid_cube_masks needs object_channels"):
        PolicyConfig(solid_cube_masks=True).validate()
    assert PolicyConfig(object_channels=True, solid_cube_masks=True).validate().solid_cube_masks
    assert not PolicyConfig().solid_cube_masks  # checkpoints from before the flag: masks unchanged


def test_solid_cube_masks_give_the_button_its_flat_cap_and_nothing_once_it_is_lit():
    """For a checkpoint whose marked_objects list the button (its cap is the red cube's red)."""
    points, colors = red_cube_and_button_cap(np.random.default_rng())
    cube, cap = slice(0, 22), slice(22, 36)
    press = torch.from_numpy(object_codes(["press the button"], ALL)).double()
    masks = object_masks(colors, press, points, solid_cubes=True)
    assert masks[0, cap, 0].all() and not masks[0, cube, 0].any()
    lit = colors.clone()
    lit[0, cap] = torch.tensor([0.15, 0.85, 0.2], dtype=lit.dtype)  # pressed: the cap turns green (sim/scene.py)
    assert object_masks(lit, press, points, solid_cubes=True)[0, :, 0].sum() == 0  # not the red cube instead
    # a lit cap is as green as the green cube: "the green cube" keeps the solid one
    lit[0, cube] = torch.tensor(OBJECT_COLORS["green_cube"], dtype=lit.dtype)
    green = torch.from_numpy(object_codes(["pick up the green cube"], ALL)).double()
    assert object_masks(lit, green, points)[0, cap, 0].all()  # the colour test alone marks both
    masks = object_masks(lit, green, points, solid_cubes=True)
    assert masks[0, cube, 0].all() and not masks[0, cap, 0].any()
