"""The shared contract: actions are validated and clipped, bad input is named."""

import numpy as np
import pytest

from vla_stack import schema


def test_out_of_range_action_is_clipped_to_documented_limits():
    a = np.array([1.0, -1.0, 0.01, 3.0, -3.0, 0.1, 5.0])
    clipped = schema.validate_action(a)
    assert np.allclose(clipped, [0.05, -0.05, 0.01, 0.25, -0.25, 0.1, 1.0])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_action_raises_naming_the_field(bad):
    a = np.zeros(7)
    a[2] = bad
    with pytest.raises(schema.SchemaError, match="action: contains 1 NaN/inf"):
        schema.validate_action(a)


def test_wrong_action_shape_raises():
    with pytest.raises(schema.SchemaError, match=r"action: expected shape \(7,\), got \(6,\)"):
        schema.validate_action(np.zeros(6))


def test_state_vector_round_trips_and_pads_joints():
    st = schema.RobotState(ee_pos=np.array([0.4, 0.0, 0.3]), ee_quat=np.array([1.0, 0, 0, 0]),
                           gripper=0.04, joints=np.arange(6, dtype=np.float32))
    v = st.to_vector()
    assert v.shape == (schema.STATE_DIM,)
    back = schema.RobotState.from_vector(v, n_joints=6)
    assert np.allclose(back.ee_pos, st.ee_pos) and np.allclose(back.joints, st.joints)
    assert v[schema.STATE_JOINTS][6] == 0.0  # padding for the 6-DoF arm


def test_point_cloud_with_too_few_points_or_nan_is_refused():
    with pytest.raises(schema.SchemaError, match="at least 16"):
        schema.check_points(np.zeros((3, 3)))
    pts = np.random.rand(64, 3)
    pts[5, 1] = np.nan
    with pytest.raises(schema.SchemaError, match="points: contains 1 NaN"):
        schema.check_points(pts)


def test_text_embeddings_round_trip_through_a_cache_file(tmp_path):
    from vla_stack import text

    enc = text.TextEncoder()
    vecs = enc(["open the drawer", "pick up the blue cube"])
    assert vecs.shape == (2, text.EMBED_DIM)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    # different sentences embed differently, the same sentence identically
    assert not np.allclose(vecs[0], vecs[1]) and np.allclose(enc("open the drawer"), vecs[0])
    enc.save(tmp_path / "cache.safetensors")
    offline = text.TextEncoder()
    offline.load(tmp_path / "cache.safetensors")
    assert np.array_equal(offline._cache["pick up the blue cube"], vecs[1])
