"""Tests for pose3d_ros.stages.track_windows: padding, explicit gaps, resampling, bounded memory."""

from __future__ import annotations

import numpy as np
import pytest

from pose3d_ros.stages.track_windows import PushEvent, TrackWindows, TrackWindowsSettings

J = 17
P = 1.0 / 30.0


def _frame(value: float) -> tuple[np.ndarray, np.ndarray]:
    return np.full((J, 2), value), np.ones(J)


def _values(windows: TrackWindows, track: int) -> np.ndarray:
    kp, _ = windows.window(track)
    return kp[:, 0, 0]


def test_fresh_track_is_padded_with_its_first_frame() -> None:
    w = TrackWindows(9)
    assert w.push(1, 0.0, *_frame(0.5)) is PushEvent.STARTED
    kp, conf = w.window(1)
    assert kp.shape == (9, J, 2) and conf.shape == (9, J)
    assert (kp == 0.5).all() and (conf == 1.0).all()
    assert w.filled(1) == 1
    w.push(1, P, *_frame(0.7))
    np.testing.assert_array_equal(_values(w, 1), [0.5] * 8 + [0.7])


def test_regular_frames_fill_the_window_newest_last() -> None:
    w = TrackWindows(4)
    for i in range(6):
        assert w.push(1, i * P, *_frame(float(i))) in (PushEvent.STARTED, PushEvent.APPENDED)
    np.testing.assert_array_equal(_values(w, 1), [2, 3, 4, 5])


def test_one_dropped_frame_is_interpolated() -> None:
    w = TrackWindows(5)
    w.push(1, 0.0, *_frame(0.0))
    w.push(1, P, *_frame(1.0))
    assert w.push(1, 3 * P, *_frame(3.0)) is PushEvent.INTERPOLATED
    np.testing.assert_allclose(_values(w, 1), [0, 0, 1, 2, 3])


def test_two_dropped_frames_are_interpolated_with_jitter() -> None:
    w = TrackWindows(5)
    w.push(1, 0.0, *_frame(0.0))
    t = 3 * P + 0.004  # two frames lost, the next one 4 ms late
    w.push(1, t, *_frame(3.0))
    # The lost slots sit on the grid (P, 2P), interpolated at their times: 3 * P / t, 3 * 2P / t.
    np.testing.assert_allclose(_values(w, 1), [0, 0, 3 * P / t, 6 * P / t, 3])


def test_interpolated_joint_missing_at_either_end_stays_missing() -> None:
    w = TrackWindows(3)
    kp, conf = _frame(0.0)
    w.push(1, 0.0, kp, conf)
    kp2, conf2 = _frame(2.0)
    conf2[4] = 0.0
    kp2[5] = np.nan
    w.push(1, 2 * P, kp2, conf2)
    kp_w, conf_w = w.window(1)
    assert kp_w[1, 0, 0] == pytest.approx(1.0) and conf_w[1, 0] == pytest.approx(1.0)
    for j in (4, 5):
        assert np.isnan(kp_w[1:, j]).all() and (conf_w[1:, j] == 0).all()


def test_long_gap_resets_the_window() -> None:
    w = TrackWindows(5, TrackWindowsSettings(max_gap_s=0.15))
    for i in range(5):
        w.push(1, i * P, *_frame(float(i)))
    assert w.push(1, 4 * P + 0.2, *_frame(9.0)) is PushEvent.RESET_GAP
    np.testing.assert_array_equal(_values(w, 1), [9.0] * 5)
    assert w.filled(1) == 1


def test_time_going_backwards_resets_the_window() -> None:
    w = TrackWindows(3)
    w.push(1, 1.0, *_frame(1.0))
    assert w.push(1, 0.5, *_frame(2.0)) is PushEvent.RESET_BACKWARDS
    np.testing.assert_array_equal(_values(w, 1), [2.0] * 3)


def test_faster_camera_replaces_the_newest_slot() -> None:
    """A 60 Hz camera on a 30 Hz grid: every other frame replaces, the window ends at the newest."""
    w = TrackWindows(4)
    events = [w.push(1, i / 60.0 + (0.001 if i else 0.0), *_frame(float(i))) for i in range(8)]
    assert events[1] is PushEvent.APPENDED and events[2] is PushEvent.REPLACED
    assert events.count(PushEvent.REPLACED) == 3
    np.testing.assert_array_equal(_values(w, 1), [2, 4, 6, 7])


def test_slot_count_follows_the_grid_not_the_camera() -> None:
    """29.97 Hz for 100 s on a 1/30 s grid: 3000 slots' worth of time gives 3000 slots (one made
    up by interpolation every ~1000 frames), never a drift."""
    w = TrackWindows(4)
    events = [w.push(1, i / 29.97, *_frame(float(i))) for i in range(2997)]
    slots = 1 + sum(
        {PushEvent.APPENDED: 1, PushEvent.INTERPOLATED: 2}.get(e, 0) for e in events[1:]
    )
    assert slots == pytest.approx(2996 / 29.97 * 30 + 1, abs=1)
    assert 1 <= events.count(PushEvent.INTERPOLATED) <= 3
    assert PushEvent.REPLACED not in events


def test_interpolation_uses_real_stamps() -> None:
    """Frames at 0 and 0.09 s on a 1/30 s grid: slots at 1/30 and 2/30 get 37 % and 74 %."""
    w = TrackWindows(3)
    w.push(1, 0.0, *_frame(0.0))
    w.push(1, 0.09, *_frame(0.9))
    np.testing.assert_allclose(_values(w, 1), [0.9 * (1 / 30) / 0.09, 0.9 * (2 / 30) / 0.09, 0.9])


def test_inferred_frame_period_resamples_a_15hz_camera_correctly() -> None:
    """frame_period_s = 0 infers 1/15 s from the stamps: no fake slots between real frames."""
    w = TrackWindows(4, TrackWindowsSettings(frame_period_s=0.0, max_gap_s=0.5))
    for i in range(10):
        w.push(1, i / 15.0, *_frame(float(i)))
    assert w.frame_period_s == pytest.approx(1 / 15.0)
    np.testing.assert_array_equal(_values(w, 1), [6, 7, 8, 9])
    # With a fixed 30 Hz grid the same stream is upsampled: every other slot interpolated.
    g = TrackWindows(4, TrackWindowsSettings(frame_period_s=1 / 30.0, max_gap_s=0.5))
    for i in range(10):
        g.push(1, i / 15.0, *_frame(float(i)))
    np.testing.assert_allclose(_values(g, 1), [7.5, 8, 8.5, 9])


def test_memory_is_bounded_and_tracks_are_dropped() -> None:
    w = TrackWindows(8)
    for i in range(1000):
        for track in (1, 2, 3):
            w.push(track, i * P, *_frame(float(i)))
    ring = w._rings[1]
    assert ring.kp.shape[0] == 8 and w.filled(1) == 8
    # A huge interpolated gap cannot write more than the window either.
    big = TrackWindows(3, TrackWindowsSettings(max_gap_s=10.0))
    big.push(1, 0.0, *_frame(0.0))
    big.push(1, 300 * P, *_frame(300.0))
    np.testing.assert_allclose(_values(big, 1), [298, 299, 300])
    w.drop(2)
    w.retain([3, 99])
    assert w.track_ids == [3] and len(w) == 1
    with pytest.raises(KeyError):
        w.window(1)


def test_window_returns_copies_and_missing_joints_are_normalised() -> None:
    w = TrackWindows(2)
    kp, conf = _frame(1.0)
    kp[3] = np.nan  # NaN keypoint with confidence 1 -> missing
    conf[4] = np.nan  # NaN confidence -> missing
    w.push(1, 0.0, kp, conf)
    kp_w, conf_w = w.window(1)
    assert conf_w[0, 3] == 0 and conf_w[0, 4] == 0 and np.isnan(kp_w[0, 4]).all()
    kp_w[:] = 0.0
    assert (w.window(1)[0][:, 0] == 1.0).all()


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        TrackWindows(0)
    with pytest.raises(ValueError, match="finite"):
        TrackWindows(2).push(1, float("nan"), *_frame(0.0))


# -- centred windows (lookahead): the window of a frame reaches L slots past it ------------------


def _kp_values(kp: np.ndarray) -> list[float]:
    return kp[:, 0, 0].tolist()


def test_causal_request_is_the_window_ending_at_the_frame() -> None:
    w = TrackWindows(4)
    for i in range(6):
        w.push(1, i * P, *_frame(float(i)))
        pending = w.request(1)
        assert pending.ready  # no look-ahead: there at once
        np.testing.assert_array_equal(pending.result()[0], w.window(1)[0])
    assert _kp_values(pending.result()[0]) == [2, 3, 4, 5]


def test_centred_window_is_ready_l_slots_later_and_padded_at_both_ends() -> None:
    w = TrackWindows(5, lookahead=2)
    requested = []
    for i in range(8):
        w.push(1, i * P, *_frame(float(i)))
        requested.append(w.request(1))
        # Frame k's window is complete once frame k + 2 is in, not before.
        assert [r.ready for r in requested] == [k + 2 <= i for k in range(i + 1)]
        assert w.waiting == min(i + 1, 2)  # never more than L windows wait per track
    w.drop(1)  # the track ends: the last two frames get what there is, end padded
    assert w.waiting == 0 and all(r.ready for r in requested)
    got = [_kp_values(r.result()[0]) for r in requested]
    assert got[0] == [0, 0, 0, 1, 2]  # start padded with the first slot
    assert got[1] == [0, 0, 1, 2, 3]
    assert got[4] == [2, 3, 4, 5, 6]
    assert got[6] == [4, 5, 6, 7, 7]  # end padded with the last slot
    assert got[7] == [5, 6, 7, 7, 7]
    assert 1 not in w


def test_centred_window_survives_a_push_that_fills_many_slots() -> None:
    # Three frames lost: one push adds 4 slots, more than the look-ahead; the windows completed
    # by the interpolated slots are copied before the ring (5 slots) overwrites their start.
    w = TrackWindows(5, lookahead=2)
    requested = []
    for i in range(4):
        w.push(1, i * P, *_frame(float(i)))
        requested.append(w.request(1))
    assert w.push(1, 7 * P, *_frame(7.0)) is PushEvent.INTERPOLATED
    assert all(r.ready for r in requested)
    np.testing.assert_allclose(_kp_values(requested[2].result()[0]), [0, 1, 2, 3, 4])
    np.testing.assert_allclose(_kp_values(requested[3].result()[0]), [1, 2, 3, 4, 5])


def test_restarted_window_ends_the_waiting_windows_of_the_old_run() -> None:
    w = TrackWindows(5, lookahead=2)
    w.push(1, 0.0, *_frame(0.0))
    first = w.request(1)
    w.push(1, P, *_frame(1.0))
    second = w.request(1)
    assert w.push(1, 5.0, *_frame(9.0)) is PushEvent.RESET_GAP  # motion across it is unknown
    assert _kp_values(first.result()[0]) == [0, 0, 0, 1, 1]
    assert _kp_values(second.result()[0]) == [0, 0, 1, 1, 1]
    fresh = w.request(1)
    assert not fresh.ready
    assert _kp_values(fresh.result()[0]) == [9, 9, 9, 9, 9]  # stop waiting: what there is


def test_centred_windows_of_two_tracks_are_independent() -> None:
    w = TrackWindows(3, lookahead=1)
    w.push("a", 0.0, *_frame(10.0))
    w.push("b", 0.0, *_frame(20.0))
    a0, b0 = w.request("a"), w.request("b")
    w.push("a", P, *_frame(11.0))
    assert a0.ready and not b0.ready
    w.retain(["a"])  # the tracker ended b
    assert b0.ready
    assert _kp_values(a0.result()[0]) == [10, 10, 11]
    assert _kp_values(b0.result()[0]) == [20, 20, 20]
    kp, conf = a0.result()
    assert kp.shape == (3, J, 2) and conf.shape == (3, J)


def test_lookahead_must_fit_in_the_window() -> None:
    with pytest.raises(ValueError, match="lookahead"):
        TrackWindows(5, lookahead=5)
    with pytest.raises(KeyError):
        TrackWindows(5, lookahead=2).request(1)
