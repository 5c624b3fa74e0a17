"""The safety layer alone (no ROS, no model): limits, watchdog, latched e-stop, NaN guard."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from vla_stack import schema
from vla_stack.ros2_nodes.safety import SafetyConfig, SafetyFilter

CENTER = np.array([0.5, 0.0, 0.3])
DT = 1.0 / 20.0


def fed_filter(**kw) -> SafetyFilter:
    f = SafetyFilter(SafetyConfig(**kw))
    f.watchdog.feed("points", 0.0)
    f.watchdog.feed("state", 0.0)
    return f


def test_small_action_passes_unchanged():
    f = fed_filter()
    a = np.array([0.002, -0.001, 0.001, 0.01, 0.0, -0.01, 0.5], np.float32)
    v = f.filter(a, CENTER, now_s=0.01)
    assert v.ok and not v.stopped
    np.testing.assert_allclose(v.action, a, atol=1e-7)


def test_speed_limit_scales_the_vector_keeping_its_direction():
    f = fed_filter(max_linear_speed_mps=0.2, max_linear_accel_mps2=1e3)
    v = f.filter(np.array([0.05, 0.05, 0, 0, 0, 0, 1.0]), CENTER, now_s=0.0)
    speed = np.linalg.norm(v.action[:3]) / DT
    assert speed == pytest.approx(0.2, rel=1e-5)
    assert v.action[0] == pytest.approx(v.action[1])  # same direction
    assert any("linear speed" in r for r in v.reasons)


def test_acceleration_limit_ramps_up_from_rest():
    f = fed_filter(max_linear_speed_mps=1.0, max_linear_accel_mps2=2.0)
    speeds = []
    for k in range(5):
        v = f.filter(np.array([0.04, 0, 0, 0, 0, 0, 1.0]), CENTER, now_s=k * DT / 10)
        speeds.append(v.action[0] / DT)
    np.testing.assert_allclose(speeds, [0.1, 0.2, 0.3, 0.4, 0.5], rtol=1e-5)  # 2 m/s^2 * 0.05 s per tick


def test_workspace_limit_stops_at_the_wall_but_allows_moving_back():
    f = fed_filter(workspace_max_m=(0.6, 0.6, 0.7), max_linear_accel_mps2=1e3)
    at_wall = np.array([0.595, 0.0, 0.3])
    v = f.filter(np.array([0.01, 0, 0, 0, 0, 0, 1.0]), at_wall, now_s=0.0)
    assert at_wall[0] + v.action[0] == pytest.approx(0.6) and "workspace limit" in v.reasons
    outside = np.array([0.7, 0.0, 0.3])
    v = f.filter(np.array([0.01, 0, 0, 0, 0, 0, 1.0]), outside, now_s=0.0)
    assert v.action[0] == pytest.approx(0.0, abs=1e-7)  # no further out
    v = f.filter(np.array([-0.01, 0, 0, 0, 0, 0, 1.0]), outside, now_s=0.0)
    assert v.action[0] == pytest.approx(-0.01)  # back toward the box is fine


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_guard_commands_zero_motion_and_keeps_the_gripper(bad):
    f = fed_filter()
    f.filter(np.array([0, 0, 0, 0, 0, 0, -1.0]), CENTER, now_s=0.0)  # gripper closed on an object
    a = np.array([0.01, 0, 0, 0, 0, 0, 1.0])
    a[3] = bad
    v = f.filter(a, CENTER, now_s=0.0)
    assert v.stopped and "NaN guard" in v.reasons[0]
    np.testing.assert_array_equal(v.action, [0, 0, 0, 0, 0, 0, -1.0])
    v = f.filter(np.zeros(7), np.array([np.nan, 0, 0]), now_s=0.0)
    assert v.stopped and "end-effector position" in v.reasons[0]


def test_watchdog_stops_when_an_input_is_stale_or_never_seen():
    f = SafetyFilter(SafetyConfig(input_timeout_s=0.2))
    a = np.array([0.001, 0, 0, 0, 0, 0, 1.0])
    v = f.filter(a, CENTER, now_s=0.0)
    assert v.stopped and "points never received" in " ".join(v.reasons)
    f.watchdog.feed("points", 1.0)
    f.watchdog.feed("state", 1.0)
    assert not f.filter(a, CENTER, now_s=1.15).stopped
    f.watchdog.feed("state", 1.15)
    v = f.filter(a, CENTER, now_s=1.25)  # points 0.25 s old, state fresh
    assert v.stopped and v.reasons == ["watchdog: points stale (0.250 s > 0.200 s)"]
    np.testing.assert_array_equal(v.action[:6], 0.0)


def test_rejected_input_invalidates_the_last_good_one():
    f = fed_filter()
    f.watchdog.invalidate("points")
    assert f.filter(np.zeros(7), CENTER, now_s=0.0).stopped


def test_estop_latches_until_explicitly_released():
    f = fed_filter()
    a = np.array([0.001, 0, 0, 0, 0, 0, 1.0])
    f.estop("button")
    for k in range(3):  # fresh inputs do not clear it
        f.watchdog.feed("points", k * DT)
        f.watchdog.feed("state", k * DT)
        v = f.filter(a, CENTER, now_s=k * DT)
        assert v.stopped and v.reasons == ["e-stop latched (button)"]
    f.release_estop()
    assert not f.filter(a, CENTER, now_s=3 * DT).stopped


def test_missing_action_from_rejected_input_stops():
    v = fed_filter().filter(None, CENTER, now_s=0.0)
    assert v.stopped and "upstream input was rejected" in v.reasons[0]


@pytest.mark.parametrize("kw, message", [
    ({"max_linear_speed_mps": 0.0}, "max_linear_speed_mps: must be a finite number > 0"),
    ({"input_timeout_s": float("nan")}, "input_timeout_s"),
    ({"workspace_min_m": (1.0, 0.0, 0.0), "workspace_max_m": (0.5, 1.0, 1.0)}, "must be below max"),
    ({"workspace_min_m": (0.0, 0.0)}, "3 finite numbers"),
])
def test_bad_limits_are_refused(kw, message):
    with pytest.raises(schema.SchemaError, match=message):
        SafetyConfig(**kw).validate()


@settings(max_examples=200, deadline=None)
@given(actions=st.lists(arrays(np.float64, 7, elements=st.floats(-1.0, 1.0) | st.just(float("nan"))),
                        min_size=1, max_size=12),
       start=arrays(np.float64, 3, elements=st.floats(-1.0, 1.5)))
def test_any_action_sequence_respects_every_limit(actions, start):
    cfg = SafetyConfig()
    f = fed_filter()
    lo, hi = np.array(cfg.workspace_min_m), np.array(cfg.workspace_max_m)
    ee, prev = start.copy(), np.zeros(3)
    for a in actions:
        v = f.filter(a, ee, now_s=0.0)
        out = v.action.astype(np.float64)
        assert np.isfinite(out).all()
        vel = out[:3] / DT
        assert np.linalg.norm(vel) <= cfg.max_linear_speed_mps * (1 + 1e-5)
        assert np.linalg.norm(out[3:6] / DT) <= cfg.max_angular_speed_radps * (1 + 1e-5)
        assert np.linalg.norm(vel - prev) / DT <= cfg.max_linear_accel_mps2 * (1 + 1e-4) or v.stopped
        new = ee + out[:3]
        # never moves further out of the box on any axis
        assert np.all((new >= np.minimum(lo, ee) - 1e-6) & (new <= np.maximum(hi, ee) + 1e-6))
        assert schema.GRIPPER_CLOSED <= out[6] <= schema.GRIPPER_OPEN
        ee, prev = new, vel


def test_once_done_an_open_hand_rises_clear_then_holds_and_a_closed_one_holds_at_once():
    from vla_stack.ros2_nodes.safety import DONE_BACK_OFF_M

    f = fed_filter()
    f.filter(np.array([0, 0, 0, 0, 0, 0, schema.GRIPPER_OPEN], np.float32), CENTER, now_s=0.0)
    # an arm that tracks each command only half-way: the rise goes on until the hand is measured clear
    ee, proposed = CENTER.copy(), []
    for k in range(30):
        a = f.finished_action(k)
        proposed.append(a)
        for name in ("points", "state"):
            f.watchdog.feed(name, (k + 1) * DT)
        out = f.filter(a, ee, now_s=(k + 1) * DT).action
        ee = ee + 0.5 * out[:3]
    proposed = np.stack(proposed)
    assert ee[2] - CENTER[2] >= DONE_BACK_OFF_M - 0.005 and (proposed[:, 6] == schema.GRIPPER_OPEN).all()
    assert proposed[:, 2].sum() > DONE_BACK_OFF_M  # more commanded than the rise it took
    np.testing.assert_array_equal(proposed[-5:, :6], 0)  # then holds
    f.filter(np.array([0, 0, 0, 0, 0, 0, -1], np.float32), CENTER, now_s=40 * DT)
    np.testing.assert_array_equal(f.finished_action(0), [0, 0, 0, 0, 0, 0, -1])


def test_the_back_off_is_bounded_and_falls_back_to_a_tick_count_without_a_measured_position():
    from vla_stack.ros2_nodes.safety import DONE_BACK_OFF_M, DONE_BACK_OFF_MAX_TICKS

    stuck = fed_filter()  # the hand does not move at all: the rise stops after the tick bound
    stuck.filter(np.array([0, 0, 0, 0, 0, 0, schema.GRIPPER_OPEN], np.float32), CENTER, now_s=0.0)
    rises = 0
    for k in range(1, 3 * DONE_BACK_OFF_MAX_TICKS):
        a = stuck.finished_action(k - 1)
        rises += bool(a[2] > 0)
        for name in ("points", "state"):
            stuck.watchdog.feed(name, k * DT)
        stuck.filter(a, CENTER, now_s=k * DT)
    assert rises == DONE_BACK_OFF_MAX_TICKS
    blind = SafetyFilter(SafetyConfig())  # never filtered a tick: no position known
    rise = np.stack([blind.finished_action(k) for k in range(10)])
    assert np.isclose(rise[:, 2].sum(), DONE_BACK_OFF_M)