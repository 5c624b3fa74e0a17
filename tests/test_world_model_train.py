"""Training and evaluation end to end on a toy world small enough for CI.

The toy world: a red block on a grey table, seen from above. "move the red block to the
left/right" ends with the block at a fixed spot on that side. The same current frame must
lead to different subgoals for the two texts, which only works if the text conditions the
network and the training loop, data format and evaluation are wired correctly.
"""

import json

import numpy as np
import pytest

from vla_stack.world_model.config import WorldModelConfig
from vla_stack.world_model.evaluate import EvalConfig, evaluate
from vla_stack.world_model.predictor import DEFAULT_CHECKPOINT, WorldModel
from vla_stack.world_model.train import TrainConfig, train
from vla_stack.world_model.triples import SubgoalEpisodes

SIZE, F = 32, 40.0
TEXTS = ["move the red block to the left", "move the red block to the right"]
GOAL_U = {0: 6, 1: 24}  # block's left column at the end of each subtask


def _camera():
    k = np.array([[F, 0, (SIZE - 1) / 2], [0, F, (SIZE - 1) / 2], [0, 0, 1]])
    ext = np.eye(4)
    ext[:3, :3] = np.diag([1.0, -1.0, -1.0])
    ext[:3, 3] = [0.0, 0.0, 1.0]
    return k, ext


def _frame(u, v):
    rgb = np.full((SIZE, SIZE, 3), 120, np.uint8)
    depth = np.full((SIZE, SIZE), 1000, np.uint16)
    rgb[v : v + 4, u : u + 4] = (210, 40, 40)
    depth[v : v + 4, u : u + 4] = 950
    return rgb, depth


def toy_episodes(n_episodes: int, seed: int, split: str) -> SubgoalEpisodes:
    rng = np.random.default_rng(seed)
    rgbs, depths, first, last, text, episode, pos = [], [], [], [], [], [], []
    for e in range(n_episodes):
        t = e % 2
        u0, v = int(rng.integers(10, 19)), int(rng.integers(6, 22))
        start = len(rgbs)
        for u in np.linspace(u0, GOAL_U[t], 5).round().astype(int):
            r, d = _frame(u, v)
            rgbs.append(r)
            depths.append(d)
        first.append(start)
        last.append(len(rgbs) - 1)
        text.append(t)
        episode.append(e)
        cu, cv = GOAL_U[t] + 1.5, v + 1.5
        top = np.array([(cu - (SIZE - 1) / 2) * 0.95 / F, -(cv - (SIZE - 1) / 2) * 0.95 / F, 0.05])
        ray = top - np.array([0.0, 0.0, 1.0])  # the toy block's centre lies 2 cm behind its top face, as for the sim's cubes
        pos.append(top + 0.02 * ray / np.linalg.norm(ray))
    emb = np.random.default_rng(99).normal(size=(2, 384)).astype(np.float32)
    words = np.random.default_rng(98).normal(size=(2, 7, 384)).astype(np.float32)  # 7 words each
    words[1, :6] = words[0, :6]  # the texts differ in their last word only
    k, ext = _camera()
    return SubgoalEpisodes(
        rgb=np.stack(rgbs), depth_mm=np.stack(depths), seg_first=np.array(first), seg_last=np.array(last),
        seg_text=np.array(text), seg_episode=np.array(episode), seg_object=np.zeros(len(first), np.int32),
        seg_object_pos=np.array(pos, np.float32), texts=TEXTS, text_embeddings=emb / np.linalg.norm(emb, axis=1, keepdims=True),
        object_names=["red block"], object_colors=np.array([[0.82, 0.16, 0.16]], np.float32),
        intrinsics=k, extrinsics=np.repeat(ext[None], n_episodes, 0), split=split, tasks=[TEXTS[t] for t in text],
        word_embeddings=words, word_mask=np.ones((2, 7), bool))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("wm")
    toy_episodes(24, seed=0, split="train").save(root / "train.npz")
    toy_episodes(8, seed=1, split="heldout_compositions").save(root / "heldout_compositions.npz")
    cfg = TrainConfig(data=(root / "train.npz",), out=root / "ckpt", steps=300, batch_size=16, lr=3e-3,
                      warmup_steps=20, device="cpu", log_every=50,
                      model=WorldModelConfig(image_size=SIZE, channels=(16, 32, 32), latent_dim=16, cond_dim=32))
    train(cfg)
    return root


def test_triples_file_round_trip_and_pairs(tmp_path):
    ep = toy_episodes(4, seed=3, split="train")
    again = SubgoalEpisodes.load(ep.save(tmp_path / "t.npz"))
    assert np.array_equal(again.rgb, ep.rgb) and again.texts == TEXTS and again.split == "train"
    pairs = again.pairs()
    assert len(pairs) == 4 * 4  # 5 frames per segment, the last is the target
    assert np.all(pairs[:, 0] < again.seg_last[pairs[:, 1]])
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="bad.npz: not a readable world model triples file"):
        SubgoalEpisodes.load(tmp_path / "bad.npz")


def test_training_lowers_the_loss_and_saves_a_checkpoint(trained):
    log = json.loads((trained / "ckpt" / "train_log.json").read_text())
    losses = [e["loss"] for e in log["log"]]
    assert losses[-1] < 0.5 * losses[0]
    assert WorldModel.load(trained / "ckpt").config.image_size == SIZE


def test_the_text_decides_where_the_block_goes(trained):
    model = WorldModel.load(trained / "ckpt")
    data = toy_episodes(2, seed=5, split="probe")
    cur = data.rgb[0]  # the first frame of an episode: block in the middle
    depth = data.depth_m([0])
    left, right = model.predict_batch(np.stack([cur, cur]), np.concatenate([depth, depth]), data.text_embeddings,
                                      data.word_embeddings, data.word_mask)
    red_cols = lambda img: np.nonzero((img[..., 0] > 160) & (img[..., 1] < 100))[1]  # noqa: E731
    assert red_cols(left.rgb).mean() < 12 < red_cols(right.rgb).mean()


def test_eval_beats_the_copy_baseline_and_writes_results(trained):
    out = trained / "results"
    path = evaluate(EvalConfig(checkpoint=trained / "ckpt", data_dir=trained, out_dir=out, batch_size=16))
    m = json.loads(path.read_text())["metrics"]
    for split in ("train", "heldout_compositions"):
        assert m[f"{split}_psnr_gain_db"] > 3.0
        assert m[f"{split}_ssim_model"] > m[f"{split}_ssim_copy"]
        assert m[f"{split}_placement_model_median_cm"] < 2.0 < m[f"{split}_placement_copy_median_cm"]
        assert (out / f"world_model_eval_sheet_{split}.png").stat().st_size > 1000


def test_the_probe_follows_the_first_cube_a_subtask_names():
    from vla_stack.world_model.generate import moved_cube

    assert moved_cube("stack the red cube on the green cube") == "red_cube"
    assert moved_cube("push the blue cube toward the bowl") == "blue_cube"
    assert moved_cube("open the drawer") is None


def test_training_never_writes_into_the_shipped_world_model(tmp_path):
    # shipped/world_model links to a committed checkpoint: writing to either would overwrite it
    committed = (DEFAULT_CHECKPOINT / "config.json").resolve().parent
    for out in (DEFAULT_CHECKPOINT, committed):
        with pytest.raises(ValueError, match="that is the shipped world model"):
            train(TrainConfig(data=(tmp_path / "unused.npz",), out=out))
    assert not TrainConfig().out.resolve().is_relative_to(committed.parent)  # default: runs/world_model
