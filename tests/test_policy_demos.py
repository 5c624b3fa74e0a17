"""Policy training data: DART-style noisy expert demos (`vla policy demos`) and a folder of
per-task datasets read as one training set."""

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from vla_stack import schema  # noqa: E402
from vla_stack.datasets.layout import DatasetSpec  # noqa: E402
from vla_stack.datasets.reader import DatasetReader  # noqa: E402
from vla_stack.datasets.synthetic import synthetic_frames  # noqa: E402
from vla_stack.datasets.writer import DatasetWriter  # noqa: E402
from vla_stack.policy.demos import CorrelatedNoise, DemosConfig, executed_action, record_all  # noqa: E402
from vla_stack.policy.multi_dataset import MultiWindowDataset, open_windows  # noqa: E402


def test_correlated_noise_has_the_asked_std_and_tick_to_tick_correlation():
    noise = CorrelatedNoise(np.full(6, 0.01), corr=0.8, rng=np.random.default_rng(0))
    x = np.stack([noise() for _ in range(20_000)])
    assert np.allclose(x.std(0), 0.01, rtol=0.08)
    lag1 = np.mean([np.corrcoef(x[:-1, i], x[1:, i])[0, 1] for i in range(6)])
    assert abs(lag1 - 0.8) < 0.03


def test_executed_action_perturbs_pose_never_the_gripper_and_stays_in_limits():
    label = np.array([0.049, 0, 0, 0, 0, 0, -1.0], np.float32)
    noise = CorrelatedNoise(np.full(6, 0.02), corr=0.5, rng=np.random.default_rng(1))
    acts = np.stack([executed_action(label, noise) for _ in range(200)])
    assert np.all(acts[:, 6] == -1.0)
    assert np.all(acts <= schema.ACTION_HIGH) and np.all(acts >= schema.ACTION_LOW)
    assert acts[:, :6].std(0).min() > 0.005
    assert executed_action(label, None) is label


def test_noisy_demos_record_successful_episodes_labelled_with_clean_expert_actions(tmp_path):
    common = dict(tasks=("CloseDrawer",), episodes=1, n_points=64, image_size=32, workers=1)
    rows = record_all(DemosConfig(out=tmp_path / "clean", **common))
    noisy = record_all(DemosConfig(out=tmp_path / "noisy", noise_pos_m=0.01, noise_rot_rad=0.03,
                                   noisy_fraction=1.0, **common))
    assert rows[0]["episodes"] == noisy[0]["episodes"] == 1 and noisy[0]["noisy_episodes"] == 1
    clean_ep = DatasetReader(tmp_path / "clean" / "CloseDrawer").episode_columns(0)
    noisy_ep = DatasetReader(tmp_path / "noisy" / "CloseDrawer").episode_columns(0)
    # same seed, same start; the noise moved the arm elsewhere ...
    assert np.allclose(clean_ep["observation.state"][0], noisy_ep["observation.state"][0])
    n = min(len(clean_ep["action"]), len(noisy_ep["action"]))
    assert np.abs(clean_ep["observation.state"][1:n, :3] - noisy_ep["observation.state"][1:n, :3]).max() > 0.003
    # ... while each label is the expert's speed-limited action (the noise is not in the labels)
    pos = noisy_ep["action"][:, :3]
    assert np.linalg.norm(pos, axis=1).max() <= 0.03 + 1e-5


def _write(root, texts_by_episode, seed):
    spec = DatasetSpec(n_points=40, cameras={})
    w = DatasetWriter.create(root, spec)
    for ep, text in enumerate(texts_by_episode):
        w.start_episode(text)
        for f in synthetic_frames(spec, 6 + ep, seed=seed + ep):
            f["subtask"] = text
            w.add_frame(f)
        w.save_episode()
    return root


def test_a_folder_of_datasets_reads_as_one_with_merged_texts_and_stats(tmp_path):
    _write(tmp_path / "all" / "a", ["open the drawer", "press the button"], seed=0)
    _write(tmp_path / "all" / "b", ["press the button", "close the drawer", "press the button"], seed=10)
    ds = open_windows(tmp_path / "all", history=3, horizon=2)
    parts = [open_windows(tmp_path / "all" / n, history=3, horizon=2) for n in ("a", "b")]
    assert isinstance(ds, MultiWindowDataset) and len(ds) == len(parts[0]) + len(parts[1])
    idx = np.array([len(ds) - 1, 0, len(parts[0]), 3])
    batch = ds[idx]
    for row, i in enumerate(idx):
        part, j = (parts[0], i) if i < len(parts[0]) else (parts[1], i - len(parts[0]))
        ref = part[int(j)]
        assert torch.equal(batch["action"][row], ref["action"])
        assert [ds.subtask_texts[k] for k in batch["subtask_index"][row]] == \
               [part.subtask_texts[k] for k in ref["subtask_index"]]
    actions = np.concatenate([DatasetReader(tmp_path / "all" / n).episode_columns(e)["action"]
                              for n, eps in (("a", 2), ("b", 3)) for e in range(eps)])
    assert np.allclose(ds.stats["action"]["mean"], actions.mean(0), atol=1e-5)
    assert np.allclose(ds.stats["action"]["std"], actions.std(0), atol=1e-4)


def test_a_folder_without_datasets_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(schema.SchemaError, match="neither a dataset"):
        open_windows(tmp_path / "empty", history=1, horizon=1)


def test_a_mixture_draws_each_source_by_its_share_however_few_windows_it_holds(tmp_path):
    from vla_stack.policy.multi_dataset import WindowMixture

    _write(tmp_path / "demos" / "a", ["open the drawer"] * 4, seed=0)   # many windows
    _write(tmp_path / "demos" / "b", ["press the button"] * 3, seed=10)
    _write(tmp_path / "fixes", ["close the drawer"], seed=20)            # one short episode
    mix = WindowMixture([tmp_path / "demos", tmp_path / "fixes"], history=2, horizon=2, weights=(0.5, 0.5))
    assert len(mix.dataset) == mix.windows.sum() and mix.windows[1] < mix.windows[0] / 5
    idx = mix.draw(np.random.default_rng(0), 20_000)
    texts = np.array(mix.dataset.subtask_texts)[mix.dataset[idx]["subtask_index"][:, 0].numpy()]
    assert abs((texts == "close the drawer").mean() - 0.5) < 0.02
    assert "fixes: " in mix.describe() and "share 0.50" in mix.describe()
    # without weights every window is equally likely, as in one folder
    even = WindowMixture([tmp_path / "demos", tmp_path / "fixes"], history=2, horizon=2)
    assert np.allclose(even.shares, even.windows / even.windows.sum())


def test_bad_mix_weights_are_refused_naming_the_problem(tmp_path):
    from vla_stack.policy.multi_dataset import WindowMixture

    _write(tmp_path / "a", ["open the drawer"], seed=0)
    _write(tmp_path / "b", ["press the button"], seed=1)
    sources = [tmp_path / "a", tmp_path / "b"]
    with pytest.raises(schema.SchemaError, match="3 given for 2 sources"):
        WindowMixture(sources, history=2, horizon=2, weights=(1.0, 1.0, 1.0))
    for bad in ((1.0, -0.5), (0.0, 0.0), (float("nan"), 1.0)):
        with pytest.raises(schema.SchemaError, match="finite and >= 0"):
            WindowMixture(sources, history=2, horizon=2, weights=bad)
    with pytest.raises(schema.SchemaError, match="neither a dataset"):
        WindowMixture([tmp_path / "a", tmp_path / "missing"], history=2, horizon=2)
