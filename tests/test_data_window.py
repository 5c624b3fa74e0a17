"""WindowDataset: the training loader, checked against a plain per-step reference."""

import numpy as np
import pytest
import torch

from vla_stack import schema
from vla_stack.datasets import DatasetReader, DatasetSpec, WindowDataset, layout
from vla_stack.datasets.synthetic import write_synthetic
from vla_stack.datasets.window import reference_window

SPEC = DatasetSpec(n_points=16, cameras={})


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("win") / "ds"
    write_synthetic(root, SPEC, episodes=3, length=6)  # lengths 6, 7, 8
    return root


def test_items_have_the_documented_shapes(root):
    ds = WindowDataset(root, history=3, horizon=4)
    assert len(ds) == 6 + 7 + 8
    item = ds[10]
    assert item["observation.points"].shape == (3, 16, 3) and item["observation.points"].dtype == torch.float32
    assert item["observation.colors"].shape == (3, 16, 3)
    assert item["observation.state"].shape == (3, schema.STATE_DIM)
    assert item["action"].shape == (3, 4, 7) and item["action_is_pad"].shape == (3, 4)
    assert item["action_is_pad"].dtype == torch.bool
    assert item["subtask_index"].dtype == torch.int64 and item["task_index"].shape == (3,)
    assert set(ds.stats[layout.ACTION]) >= {"mean", "std", "min", "max"}
    assert ds.task_texts[int(item["task_index"][0])] in ("put the blue cube in the drawer", "open the drawer")
    assert ds.subtask_texts[int(item["subtask_index"][-1])].endswith(("cube", "drawer"))


@pytest.mark.parametrize("normalize", [False, True])
def test_every_window_matches_the_reference_loop(root, normalize):
    ds = WindowDataset(root, history=3, horizon=4, normalize=normalize)
    reader = DatasetReader(root)
    i = 0
    for ep in range(reader.num_episodes):
        for t in range(reader.episodes[ep]["length"]):
            want = reference_window(reader, ep, t, 3, 4, normalize_with=reader.stats if normalize else None)
            got = ds[i]
            for k in ("observation.state", "action", "action_is_pad", "observation_is_pad", "observation.points",
                      "subtask_index", "task_index"):
                np.testing.assert_allclose(got[k].numpy(), want[k], rtol=1e-6, atol=1e-6, err_msg=f"{k} ep{ep} t{t}")
            i += 1


def test_padding_at_episode_edges(root):
    ds = WindowDataset(root, history=2, horizon=3, normalize=False)
    first = ds[0]
    assert first["observation_is_pad"].tolist() == [True, False]
    torch.testing.assert_close(first["observation.state"][0], first["observation.state"][1])  # clamped to frame 0
    last = ds[5]  # last frame of episode 0 (length 6)
    assert last["action_is_pad"][-1].tolist() == [False, True, True]
    assert not torch.equal(ds[6]["observation.state"][-1], last["observation.state"][-1])  # next episode


def test_normalization_round_trips_and_standardizes(root):
    ds = WindowDataset(root, history=1, horizon=1, normalize=True)
    raw = WindowDataset(root, history=1, horizon=1, normalize=False)
    acts = ds[list(range(len(ds)))]["action"][:, 0, 0]
    assert acts.mean(0).abs().max() < 1e-4 and (acts.std(0, unbiased=False) - 1).abs().max() < 1e-3
    torch.testing.assert_close(ds.unnormalize_action(acts), raw[list(range(len(raw)))]["action"][:, 0, 0])


def test_batched_indexing_equals_stacked_items_and_works_with_workers(root):
    ds = WindowDataset(root, history=2, horizon=3)
    batch = ds[[0, 7, 20]]
    for j, i in enumerate([0, 7, 20]):
        for k, v in ds[i].items():
            torch.testing.assert_close(batch[k][j], v)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True, num_workers=2)
    seen = torch.cat([b["episode_index"] for b in loader])
    assert len(seen) == len(ds) and sorted(seen.tolist()) == sorted([0] * 6 + [1] * 7 + [2] * 8)


def test_bad_arguments_are_refused(root, tmp_path):
    with pytest.raises(ValueError, match="history and horizon"):
        WindowDataset(root, history=0)
    with pytest.raises(IndexError):
        WindowDataset(root)[10_000]
    with pytest.raises(schema.SchemaError, match="info.json.*missing"):
        WindowDataset(tmp_path)
