"""Object masks: the subtask's cubes named in the image, so unseen colour x destination pairs work.

The toy world: a red and a blue block on a grey table. Training moves the red block left or
right, and the blue block only ever right (as the sim's training split puts red and green
cubes in the bowl, never the blue one). "move the blue block to the left" is a held-out
composition: a model that reads the block from its mask channel and the side from the
delexicalised text ("move the cube to the left") must still move the blue block, and only
it, to the left.
"""

import json

import numpy as np
import pytest
import torch

from vla_stack import schema
from vla_stack.world_model import objects
from vla_stack.world_model.config import WorldModelConfig
from vla_stack.world_model.predictor import WorldModel
from vla_stack.world_model.train import TrainConfig, TripleSampler, train
from vla_stack.world_model.triples import SubgoalEpisodes

WORDS = objects.DEFAULT_OBJECT_WORDS
COLOURS = objects.DEFAULT_OBJECT_COLORS
SIZE = 32
RED, BLUE = (210, 40, 40), (40, 60, 210)
TOY_WORDS = {"red_block": "red block", "blue_block": "blue block"}
TOY_COLOURS = {"red_block": (0.82, 0.16, 0.16), "blue_block": (0.16, 0.24, 0.82)}
TRAIN_TEXTS = ["move the red block to the left", "move the blue block to the right", "move the red block to the right"]
GOAL_U = {"left": 4, "right": 24}


def test_the_first_cube_named_moves_and_the_second_is_the_reference():
    assert objects.named_objects("stack the blue cube on the red cube", WORDS) == ["blue_cube", "red_cube"]
    assert objects.delexicalise("stack the blue cube on the red cube", WORDS) == "stack the cube on the other cube"
    assert objects.delexicalise("put the green cube in the bowl", WORDS) == "put the cube in the bowl"
    assert objects.delexicalise("open the drawer", WORDS) == "open the drawer"
    cols = objects.mask_colours("push the green cube toward the button", WORDS, COLOURS)
    assert np.allclose(cols[0], COLOURS["green_cube"]) and cols[1] is None


def _two_cubes():
    rgb = np.full((SIZE, SIZE, 3), 120, np.uint8)
    rgb[4:8, 4:8] = (215, 25, 25)  # red cube
    rgb[20:24, 10:14] = (25, 64, 230)  # blue cube
    rgb[12:16, 20:24] = (90, 80, 200)  # a violet distractor
    return rgb


def test_masks_mark_exactly_the_named_cubes():
    m = objects.object_masks(_two_cubes(), objects.mask_colours("stack the blue cube on the red cube", WORDS, COLOURS))
    assert m.shape == (2, SIZE, SIZE) and m.dtype == np.float32
    blue, red = np.zeros((SIZE, SIZE)), np.zeros((SIZE, SIZE))
    blue[20:24, 10:14] = 1
    red[4:8, 4:8] = 1
    assert np.array_equal(m[0], blue) and np.array_equal(m[1], red)


def test_device_masks_match_the_reference():
    rng = np.random.default_rng(0)
    rgb = np.stack([_two_cubes(), rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)])
    texts = ["stack the blue cube on the red cube", "pick up the green cube"]
    model = WorldModel(WorldModelConfig(image_size=SIZE, channels=(8, 8), object_masks=True, word_tokens=False))
    ref = model.object_masks(rgb, texts)
    fast = model.object_masks_on_device(rgb, texts).numpy()
    assert np.array_equal(ref, fast)
    assert fast[1, 1].sum() == 0  # "pick up" names no second cube: an empty channel


def test_an_object_mask_model_needs_its_masks():
    model = WorldModel(WorldModelConfig(image_size=SIZE, channels=(8, 8), object_masks=True, word_tokens=False))
    rgb, depth, emb = _two_cubes()[None], np.ones((1, SIZE, SIZE), np.float32), np.ones((1, 384), np.float32) / 384**0.5
    with pytest.raises(schema.SchemaError, match="object_masks: this world model needs"):
        model.predict_batch(rgb, depth, emb)
    with pytest.raises(schema.SchemaError, match="object_masks"):
        model.predict_batch(rgb, depth, emb, object_masks=np.zeros((1, 1, SIZE, SIZE), np.float32))
    with pytest.raises(schema.SchemaError, match="subtask: expected a list of 1"):
        model.predict_subtasks(rgb, depth, "pick up the red cube")


def test_old_configs_load_without_masks_and_object_tables_must_agree():
    old = json.loads(WorldModelConfig().to_json())
    for k in ("object_masks", "object_words", "object_colors"):
        old.pop(k)
    assert WorldModelConfig.from_json(json.dumps(old)).object_masks is False
    with pytest.raises(ValueError, match="must name the same objects"):
        WorldModelConfig(object_words={"red_cube": "red cube"})


# -- the held-out composition, end to end --------------------------------------------------

def _frame(red_u, blue_u, red_v=6, blue_v=22):
    rgb = np.full((SIZE, SIZE, 3), 120, np.uint8)
    depth = np.full((SIZE, SIZE), 1000, np.uint16)
    for u, v, c in ((red_u, red_v, RED), (blue_u, blue_v, BLUE)):
        rgb[v : v + 4, u : u + 4] = c
        depth[v : v + 4, u : u + 4] = 950
    return rgb, depth


def toy_two_blocks(n_episodes: int, seed: int) -> SubgoalEpisodes:
    """Red goes left or right, blue only right: (blue, left) is never in training."""
    rng = np.random.default_rng(seed)
    rgbs, depths, first, last, text, episode = [], [], [], [], [], []
    for e in range(n_episodes):
        t = e % 3
        u = {"red": int(rng.integers(10, 19)), "blue": int(rng.integers(10, 19))}
        mover, side = TRAIN_TEXTS[t].split()[2], TRAIN_TEXTS[t].split()[-1]
        start = len(rgbs)
        for x in np.linspace(u[mover], GOAL_U[side], 4).round().astype(int):
            u[mover] = int(x)
            r, d = _frame(u["red"], u["blue"])
            rgbs.append(r)
            depths.append(d)
        first.append(start)
        last.append(len(rgbs) - 1)
        text.append(t)
        episode.append(e)
    k = np.array([[40.0, 0, (SIZE - 1) / 2], [0, 40.0, (SIZE - 1) / 2], [0, 0, 1]])
    return SubgoalEpisodes(
        rgb=np.stack(rgbs), depth_mm=np.stack(depths), seg_first=np.array(first), seg_last=np.array(last),
        seg_text=np.array(text), seg_episode=np.array(episode), seg_object=np.array([TRAIN_TEXTS[t].split()[2] == "blue" for t in text], np.int32),
        seg_object_pos=np.zeros((len(first), 3), np.float32), texts=TRAIN_TEXTS,
        text_embeddings=np.zeros((3, 384), np.float32), object_names=list(TOY_WORDS),
        object_colors=np.array([TOY_COLOURS[o] for o in TOY_WORDS], np.float32), intrinsics=k,
        extrinsics=np.repeat(np.eye(4)[None], n_episodes, 0), split="train", tasks=[TRAIN_TEXTS[t] for t in text])


def test_colour_permutation_keeps_pairs_consistent_and_depth_untouched():
    data = toy_two_blocks(4, seed=3)
    cfg = WorldModelConfig(image_size=SIZE, channels=(8, 8), object_masks=True, word_tokens=False,
                           object_words=TOY_WORDS, object_colors=TOY_COLOURS)
    sampler = TripleSampler(data, cfg, torch.device("cpu"), seed=0, colour_permute_prob=1.0)
    cur, _, _, _, tgt, masks, tgt_obj, _ = sampler.batch(8)
    plain = TripleSampler(data, cfg, torch.device("cpu"), seed=0)
    cur0, _, _, _, tgt0, masks0, _, _ = plain.batch(8)
    assert torch.equal(masks, masks0) and masks[:, 0].sum() > 0 and tgt_obj.shape == (8, 1, SIZE, SIZE)
    assert torch.equal(cur[:, 3], cur0[:, 3]) and torch.equal(tgt[:, 3], tgt0[:, 3])  # depth
    assert torch.equal(cur[:, :3].sort(dim=1).values, cur0[:, :3].sort(dim=1).values)  # same values, new order
    assert not torch.equal(cur[:, :3], cur0[:, :3])
    for i in range(8):  # one order per pair: current and target permuted alike
        order = [int(torch.nonzero((cur0[i, :3] == cur[i, c]).all(dim=(1, 2)))[0]) for c in range(3)]
        assert torch.equal(tgt[i, :3], tgt0[i, order])


@pytest.fixture(scope="module")
def trained_with_masks(tmp_path_factory):
    root = tmp_path_factory.mktemp("wm_objects")
    toy_two_blocks(30, seed=0).save(root / "train.npz")
    cfg = TrainConfig(data=(root / "train.npz",), out=root / "ckpt", steps=350, batch_size=16, lr=3e-3, warmup_steps=20,
                      device="cpu", log_every=50, colour_permute_prob=0.5, object_weight=4.0,
                      model=WorldModelConfig(image_size=SIZE, channels=(16, 32, 32), latent_dim=16, cond_dim=32,
                                             object_masks=True, word_tokens=False, object_words=TOY_WORDS,
                                             object_colors=TOY_COLOURS))
    train(cfg)
    return WorldModel.load(root / "ckpt")


def _columns(img, colour):
    return np.nonzero(np.abs(img.astype(int) - colour).sum(-1) < 90)[1]


def test_a_held_out_colour_x_side_pair_moves_the_named_block(trained_with_masks):
    rgb, depth = _frame(red_u=14, blue_u=14)
    goals = trained_with_masks.predict_subtasks(
        np.stack([rgb, rgb]), np.stack([depth, depth]).astype(np.float32) / 1000,
        ["move the blue block to the left", "move the red block to the left"])  # the first was never trained
    blue_left, red_left = goals[0].rgb, goals[1].rgb
    assert _columns(blue_left, BLUE).mean() < 10 and abs(_columns(blue_left, RED).mean() - 15.5) < 2
    assert _columns(red_left, RED).mean() < 10 and abs(_columns(red_left, BLUE).mean() - 15.5) < 2


# -- a cube the gripper hides: its colour comes as a conditioning vector --------------------

def _scene(blocks: dict[str, tuple[int, int]]):
    rgb = np.full((SIZE, SIZE, 3), 120, np.uint8)
    depth = np.full((SIZE, SIZE), 1000, np.uint16)
    for name, (u, v) in blocks.items():
        rgb[v : v + 4, u : u + 4] = RED if name == "red" else BLUE
        depth[v : v + 4, u : u + 4] = 950
    return rgb, depth


def toy_hidden_block(n_episodes: int, seed: int) -> SubgoalEpisodes:
    """The moved block is out of sight (held) until it appears at its goal: its mask is empty."""
    rng = np.random.default_rng(seed)
    rgbs, depths, first, last, text = [], [], [], [], []
    for e in range(n_episodes):
        t = e % 3
        mover, side = TRAIN_TEXTS[t].split()[2], TRAIN_TEXTS[t].split()[-1]
        other = "blue" if mover == "red" else "red"
        stay = (int(rng.integers(12, 17)), int(rng.integers(4, 24)))
        first.append(len(rgbs))
        for _ in range(3):
            r, d = _scene({other: stay})
            rgbs.append(r)
            depths.append(d)
        r, d = _scene({other: stay, mover: (GOAL_U[side], 14 if abs(stay[1] - 14) > 5 else 24 - stay[1] // 4)})
        rgbs.append(r)
        depths.append(d)
        last.append(len(rgbs) - 1)
        text.append(t)
    k = np.array([[40.0, 0, (SIZE - 1) / 2], [0, 40.0, (SIZE - 1) / 2], [0, 0, 1]])
    return SubgoalEpisodes(
        rgb=np.stack(rgbs), depth_mm=np.stack(depths), seg_first=np.array(first), seg_last=np.array(last),
        seg_text=np.array(text), seg_episode=np.arange(n_episodes), seg_object=np.zeros(n_episodes, np.int32),
        seg_object_pos=np.zeros((n_episodes, 3), np.float32), texts=TRAIN_TEXTS, text_embeddings=np.zeros((3, 384), np.float32),
        object_names=list(TOY_WORDS), object_colors=np.array([TOY_COLOURS[o] for o in TOY_WORDS], np.float32),
        intrinsics=k, extrinsics=np.repeat(np.eye(4)[None], n_episodes, 0), split="train", tasks=[TRAIN_TEXTS[t] for t in text])


def test_a_hidden_block_of_a_held_out_pair_is_painted_in_its_own_colour(tmp_path):
    toy_hidden_block(30, seed=0).save(tmp_path / "train.npz")
    train(TrainConfig(data=(tmp_path / "train.npz",), out=tmp_path / "ckpt", steps=800, batch_size=16, lr=3e-3,
                      warmup_steps=20, device="cpu", log_every=100, colour_permute_prob=0.5, object_weight=16.0,
                      model=WorldModelConfig(image_size=SIZE, channels=(16, 32, 32), latent_dim=16, cond_dim=32,
                                             object_masks=True, object_colour_input=True, word_tokens=False,
                                             object_words=TOY_WORDS, object_colors=TOY_COLOURS)))
    model = WorldModel.load(tmp_path / "ckpt")
    rgb, depth = _scene({"red": (14, 4)})  # the blue block is out of sight: nothing to mask
    assert model.object_masks(rgb[None], ["move the blue block to the left"])[0, 0].sum() == 0
    goal = model.predict_subtasks(rgb[None], depth[None].astype(np.float32) / 1000, ["move the blue block to the left"])[0]
    blue = _columns(goal.rgb, BLUE)
    assert len(blue) >= 8 and blue.mean() < 10  # a blue block appears on the left, never trained for blue
    assert len(_columns(goal.rgb[:, :10], RED)) == 0  # and it is not the red block painted there
