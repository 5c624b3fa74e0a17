"""Seed article experiment 2 (benchmarks/seed_equivariance.py) in its --quick mode: trained at
one orientation only, the project's equivariant encoder classifies rotated objects as well as
unrotated ones, while the PointNet baseline and the serialised-points transformer do not."""

import json

import numpy as np
import pytest

from benchmark_scripts import load_benchmark


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed_eq")
    path = load_benchmark("seed_equivariance").main(["--quick", "--out-dir", str(out)])
    assert path.with_suffix(".png").stat().st_size > 10_000
    return json.loads(path.read_text())


def test_equivariant_encoder_accuracy_does_not_depend_on_rotation(result):
    m = result["metrics"]
    chance = 1 / 6
    assert m["equivariant_gravity_0deg_acc"] > 2 * chance  # it learned something
    for kind in ("gravity", "so3"):
        assert m[f"equivariant_{kind}_max_drop_from_0deg"] <= 0.05, kind
        assert m[f"equivariant_{kind}_max_logit_change"] < 1e-3, kind  # invariant features, float32


def test_standard_features_fail_under_rotation(result):
    m = result["metrics"]
    for model in ("pointnet", "serialized_transformer"):
        assert m[f"{model}_so3_0deg_acc"] > 0.6, model
        assert m[f"{model}_so3_90deg_acc"] < m[f"{model}_so3_0deg_acc"] - 0.2, model
        assert m[f"{model}_so3_max_logit_change"] > 0.1, model


def test_objects_are_centred_and_rotations_are_proper():
    mod = load_benchmark("seed_equivariance")
    clouds, labels = mod.make_dataset(per_class=2, n_points=64, seed=0)
    assert clouds.shape == (12, 64, 3) and sorted(set(labels.tolist())) == list(range(6))
    assert clouds.mean(1).abs().max() < 1e-6
    r = mod.rotation(np.array([1.0, 2.0, 3.0]), 70)
    assert np.allclose(r @ r.T, np.eye(3)) and np.isclose(np.linalg.det(r), 1.0)
    rotated = mod.rotate(clouds, 70, np.tile([1.0, 2.0, 3.0], (12, 1)))
    assert np.allclose(rotated.norm(dim=-1), clouds.norm(dim=-1), atol=1e-6)  # rigid, about the centroid


def test_unknown_names_are_refused():
    mod = load_benchmark("seed_equivariance")
    with pytest.raises(KeyError, match="unknown object class 'sphere'"):
        mod.mesh("sphere")
    with pytest.raises(KeyError, match="unknown model 'resnet'"):
        mod.build("resnet", 64, quick=True)
