"""The soak's faults: each injects one thing and CHECKS the recovery, returning
`{kind, recovered, detail, t_s}` (recovered None = not run, detail says why).

Scheduled faults run one after another in the soak's main thread (`schedule`); the continuous
ones (a model raising on one frame, clock jumps of the looped recording, the subscriber that
never reads) are set up at the start and checked at the end (`end_checks`).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image

from pose3d_tools.soak import report as rep
from pose3d_tools.soak.runner import FAULT_CALL, SIM_CAMERA

CAMERA_STOP_S = 10.0
RESUME_TIMEOUT_S = 15.0
RESTART_TIMEOUT_S = 60.0  # model load of the new process on 2 busy cores: ~25 s


def _result(kind: str, recovered: bool | None, detail: str, t_s: float) -> dict:
    return {"kind": kind, "recovered": recovered, "detail": detail, "t_s": round(t_s, 1)}


def camera_stop(soak) -> dict:
    """Camera 1's source frozen (SIGSTOP) for 10 s, then resumed: skeletons must resume. Ids: as
    tracking.py documents, absence must be observed, so a track matched in the last frame before
    the stall may keep its id; any other id seen before the stall (coasting then) must not come
    back (expired: the gap is longer than the grace period and the 4 s re-attachment window)."""
    cam, src = "cam1", soak.procs["video_source_1"]
    t0 = soak.obs.t()
    recent = soak.obs.arrivals_between(cam, t0 - 10, t0)
    before = {i for a in recent for i in a[2]}
    last = set(recent[-1][2]) if recent else set()
    src.popen.send_signal(signal.SIGSTOP)
    soak.sleep(CAMERA_STOP_S)
    src.popen.send_signal(signal.SIGCONT)
    t1 = soak.obs.t()
    during = soak.obs.arrivals_between(cam, t0 + 1.0, t1)
    first = soak.wait_publishing(cam, t1, RESUME_TIMEOUT_S)
    soak.sleep(5.0)
    after = {i for a in soak.obs.arrivals_between(cam, t1, soak.obs.t()) for i in a[2]}
    back = before & after
    revived = sorted(back - last)
    ok = first is not None and not revived and len(during) == 0
    return _result(
        "camera_stops_10s", ok,
        (
            f"{len(during)} messages while stopped; first skeletons {first - t1:.1f} s after "
            "resume; " if first is not None else "no skeletons within 15 s of resume; "
        )
        + f"{len(after - before)} new ids after it; old ids kept {sorted(back & last)} (matched "
        f"in the last frame before the stall, as documented); expired ids revived: {revived}",
        t0,
    )  # fmt: skip


def camera_info_size(soak) -> dict:
    """A 640x480 camera_info on camera 2 at 30 Hz for 3 s beside the real 768x576 one: frames
    meeting the wrong size are skipped (counted), processing resumes once it stops."""
    cam, node = "cam2", "pose3d_2"
    pub = soak.node.create_publisher(CameraInfo, f"/{cam}/camera_info", QoSProfile(depth=5))
    t0 = soak.obs.t()
    skipped0 = soak.obs.diag_value(node, "frames_skipped")
    info = CameraInfo(width=640, height=480, distortion_model="plumb_bob")
    info.k = [500.0, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0]
    info.p = [500.0, 0.0, 320.0, 0.0, 0.0, 500.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.d = [0.0] * 5
    info.header.frame_id = "camera_optical_frame"
    for _ in range(90):
        info.header.stamp = soak.node.get_clock().now().to_msg()
        pub.publish(info)
        time.sleep(1 / 30)
    t1 = soak.obs.t()
    soak.sleep(3.0)  # diagnostics (1 Hz) catch up
    skipped = soak.obs.diag_value(node, "frames_skipped") - skipped0
    first = soak.wait_publishing(cam, t1 + 1.0, RESUME_TIMEOUT_S)
    soak.node.destroy_publisher(pub)
    ok = first is not None and soak.procs[node].running()
    return _result(
        "camera_info_changes_size", ok,
        f"90 camera_info 640x480 over 3 s; frames skipped meanwhile: {skipped} (0 = none of the "
        f"processed frames met the wrong one); skeletons "
        + (f"again {first - t1:.1f} s after it stopped" if first is not None else "NOT resumed"),
        t0,
    )  # fmt: skip


def _malformed_images() -> list[Image]:
    def img(**kw) -> Image:
        m = Image(height=576, width=768, encoding="bgr8", step=768 * 3)
        for k, v in kw.items():
            setattr(m, k, v)
        return m

    return [
        img(data=b"\x00" * 100),  # truncated
        img(encoding="no_such_encoding", data=b"\x00" * (768 * 576 * 3)),
        img(step=10, data=b"\x00" * (768 * 576 * 3)),  # step shorter than a row
        img(height=0, width=0, step=0, data=b""),
        img(height=100000, width=100000, step=300000, data=b"\x00" * 16),  # claims 10^10 pixels
        img(encoding="16UC1", step=768 * 2, data=b"\x00" * (768 * 2 * 576 - 1)),  # one byte short
    ]


def malformed_burst(soak) -> dict:
    """60 malformed images (6 kinds, 10 each) on camera 0 within 2 s: refused and counted
    (frames_skipped), the node keeps processing the real ones."""
    cam, node = "cam0", "pose3d_0"
    pub = soak.node.create_publisher(Image, f"/{cam}/image", QoSProfile(depth=10))
    t0 = soak.obs.t()
    skipped0 = soak.obs.diag_value(node, "frames_skipped")
    bad = _malformed_images()
    for i in range(60):
        msg = bad[i % len(bad)]
        msg.header.stamp = soak.node.get_clock().now().to_msg()
        pub.publish(msg)
        time.sleep(2 / 60)
    t1 = soak.obs.t()
    soak.sleep(3.0)
    skipped = soak.obs.diag_value(node, "frames_skipped") - skipped0
    first = soak.wait_publishing(cam, t1, RESUME_TIMEOUT_S)
    soak.node.destroy_publisher(pub)
    ok = first is not None and soak.procs[node].running() and skipped > 0
    return _result(
        "malformed_images_burst", ok,
        f"60 malformed images; {skipped} refused and counted in frames_skipped (the rest were "
        "replaced by newer frames before processing: dropped); skeletons "
        + (f"again {first - t1:.1f} s later" if first is not None else "NOT resumed"),
        t0,
    )  # fmt: skip


def kill_restart(soak) -> dict:
    """pose3d_2 killed (SIGKILL) and started again: it must publish again; ids restart at 1
    (track ids are per process: a new process counts from 1 again).

    If the new process gets no images within NODE_ALONE_S, the camera source is restarted too
    and that is reported (Fast DDS shared memory after a SIGKILL: eProsima/Fast-DDS#5469,
    #5053, #2811); recovered is then False: the node alone did not recover."""
    cam, name = "cam2", "pose3d_2"
    t0 = soak.obs.t()
    before = [i for a in soak.obs.arrivals_between(cam, 0, t0) for i in a[2]]
    proc = soak.procs[name]
    soak.expected_exit.add(name)
    proc.popen.send_signal(signal.SIGKILL)
    proc.popen.wait(10)
    soak.start(soak.pose3d_spec(2), 2)
    soak.expected_exit.discard(name)
    started = soak.obs.t()
    first = soak.wait_publishing(cam, started, RESTART_TIMEOUT_S)
    workaround = ""
    if first is None:
        source = "video_source_2"
        soak.expected_exit.add(source)
        soak.procs[source].stop()
        soak.start(soak.source_spec(2, soak.out_dir / "replay_bag"), 2)
        soak.expected_exit.discard(source)
        again = soak.obs.t()
        first_src = soak.wait_publishing(cam, again, RESUME_TIMEOUT_S * 2)
        workaround = (
            f"; the restarted node got NO image in {RESTART_TIMEOUT_S:.0f} s (its log: "
            f"'{soak.procs[name].log().strip().splitlines()[-1][-60:]}'); after restarting the "
            "camera source too, skeletons "
            + (f"again {first_src - again:.1f} s later" if first_src is not None else "still none")
            + " (Fast DDS shared memory after a SIGKILL: eProsima/Fast-DDS#5469, #5053)"
        )
        if first_src is None:
            return _result(
                "node_killed_restarted", False, "no skeletons after restart" + workaround, t0
            )
        first = first_src
    soak.sleep(5.0)
    after = [i for a in soak.obs.arrivals_between(cam, first, soak.obs.t()) for i in a[2]]
    restarted_ids = bool(after) and min(after) < (max(before) if before else 1) and min(after) <= 5
    return _result(
        "node_killed_restarted", restarted_ids and not workaround,
        f"killed with SIGKILL; publishing again {first - t0:.1f} s later; ids "
        f"before up to {max(before) if before else None}, after the restart from "
        f"{min(after) if after else None} (ids restart at 1 in a new process)" + workaround,
        t0,
    )  # fmt: skip


def clock_jump(soak) -> dict:
    """Camera 3's replay (use_sim_time, /clock from the recording) restarted from its beginning,
    as when `ros2 bag play` is started again: /clock jumps back. Skeletons with the earlier
    stamps must follow, /diagnostics (a sim-time timer) must keep coming, and the node says that
    time went backwards (its tracks are dropped)."""
    obs, name = soak.obs, "video_source_3"
    t0 = obs.t()
    with obs.lock:
        n_before = len(obs.clock_jumps)
    soak.expected_exit.add(name)
    soak.procs[name].stop()
    soak.start(soak.source_spec(SIM_CAMERA, soak.bag), SIM_CAMERA)
    soak.expected_exit.discard(name)
    deadline = time.monotonic() + RESUME_TIMEOUT_S * 2
    while time.monotonic() < deadline:
        with obs.lock:
            jump = obs.clock_jumps[n_before] if len(obs.clock_jumps) > n_before else None
        if jump is not None:
            break
        soak.sleep(0.2)
    if jump is None:
        return _result("clock_jumps_backwards", False, "/clock never went back", t0)
    t_jump, back_s = jump
    first = soak.wait_publishing("cam3", t_jump, RESUME_TIMEOUT_S)
    soak.sleep(5.0)
    with obs.lock:
        diag_after = sum(1 for t, _ in obs.diag["pose3d_3"] if t > t_jump + 1.0)
    said = soak.procs["pose3d_3"].log().count("time went backwards")
    ok = first is not None and diag_after >= 2
    return _result(
        "clock_jumps_backwards", ok,
        f"replay restarted: /clock went back {back_s:.1f} s; skeletons "
        + (f"again {first - t_jump:.1f} s after the jump" if first is not None else "NOT resumed")
        + f"; {diag_after} /diagnostics messages in the following ~5 s; the node logged 'time "
        f"went backwards' {said} time(s)",
        t0,
    )  # fmt: skip


def start_stalled_subscriber(soak) -> dict | None:
    """Start the subscriber that never reads (images and skeletons of camera 0); checked at the
    end (end_checks). Returns None: no result yet."""
    soak.stalled_t = soak.obs.t()
    soak.extra["stalled_subscriber"] = subprocess.Popen(
        [sys.executable, "-m", "pose3d_tools.soak.stalled_subscriber", "/cam0/image",
         "/cam0/skeletons"],
        env=soak.graph.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return None


def schedule(duration_s: float) -> list[tuple[float, Callable]]:
    """(soak time s, fault) in order: spread over the run, the node restart last."""
    return [
        (0.10 * duration_s, start_stalled_subscriber),
        (0.15 * duration_s, camera_stop),
        (0.25 * duration_s, clock_jump),
        (0.35 * duration_s, camera_info_size),
        (0.45 * duration_s, malformed_burst),
        (0.55 * duration_s, kill_restart),
    ]


def _growth_since(samples: list[dict], t_from: float) -> float | None:
    rows = [s for s in samples if s["t_s"] >= t_from]
    if len(rows) < 4:
        return None
    start = sorted(s["rss_mib"] for s in rows[:3])[1]
    end = sorted(s["rss_mib"] for s in rows[-3:])[1]
    return (end - start) / start * 100


def end_checks(soak, end_t: float) -> list[dict]:
    """The continuous faults, checked at the end of the run."""
    out = []
    # A model raising on one frame (pose3d_0's lifter, POSE3D_TEST_FAULT_INJECTION).
    obs, node = soak.obs, "pose3d_0"
    failed = obs.diag_value(node, "frames_failed")
    with obs.lock:
        t_fail = next((t for t, v in obs.diag[node] if int(v.get("frames_failed", 0)) > 0), None)
    log = soak.procs[node].log()
    logged = log.count("InjectedFaultError")
    processed_after = (
        None if t_fail is None else
        len(obs.arrivals_between("cam0", t_fail, end_t))
    )  # fmt: skip
    out.append(_result(
        "model_raises_on_one_frame",
        t_fail is not None and failed == 1 and logged == 1 and (processed_after or 0) > 10,
        f"lifter raised on its call {FAULT_CALL}: /diagnostics frames_failed={failed}, "
        f"logged {logged} time(s), {processed_after} skeleton messages after it",
        t_fail if t_fail is not None else 0.0,
    ))  # fmt: skip
    # The subscriber that never reads.
    t_s = getattr(soak, "stalled_t", None)
    if t_s is None:
        out.append(_result("subscriber_never_reads", None, "not started", 0.0))
    else:
        growth = {}
        for name in ("stalled_subscriber", "video_source_0", "pose3d_0"):
            since = max(t_s + 20, rep.rss_baseline_s(end_t))  # after warm-up, as the goal
            g = _growth_since(soak.stats.samples.get(name, []), since)
            growth[name] = None if g is None else round(g, 1)
        alive = soak.extra["stalled_subscriber"].poll() is None
        late = len(obs.arrivals_between("cam0", end_t - 30, end_t))
        ok = alive and late > 0 and all(g is not None and g <= 5.0 for g in growth.values())
        out.append(_result(
            "subscriber_never_reads", ok,
            f"reliable depth-100 subscriber on /cam0/image + /cam0/skeletons, never spun, for "
            f"{end_t - t_s:.0f} s: RSS growth % from {since:.0f} s {growth}; "
            f"cam0 skeleton messages in the last 30 s: {late}",
            t_s,
        ))  # fmt: skip
    return out
