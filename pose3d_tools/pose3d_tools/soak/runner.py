"""`make soak` (`python -m pose3d_tools.soak.runner`): 4 cameras at 30 Hz into 4 pose3d_nodes.

Real footage (vtest.avi; camera 3 replays a short recording of it in a loop with /clock and its
pose3d_node runs on use_sim_time; the clock jump fault restarts that replay), real DDS, one
process per node (the graph machinery of `make demo`: ProcessGraph on a private domain). One
pose3d_node per camera: the multi-camera `cameras` parameter of pose3d_node had not landed when
this was written. Faults are injected on a schedule (faults.py) and each one's recovery is
checked; RSS/CPU/fds/threads of every process are sampled every SAMPLE_PERIOD_S. Writes
out/soak/report.json and out/soak/report.png; exit code 1 when a goal is not met.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

import cv2
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, qos_profile_sensor_data
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, CompressedImage

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.assets import config_file
from pose3d_ros.core.image_encoding import encode_compressed
from pose3d_ros.ros.demo_graph import NodeSpec
from pose3d_ros.ros.process_graph import NodeProcess, ProcessGraph
from pose3d_tools import FOOTAGE_DIR
from pose3d_tools.bag_recorder import project_typestore, ros_type_name
from pose3d_tools.soak import report as rep

CAMERAS = 4
RATE_HZ = 30.0
SAMPLE_PERIOD_S = 5.0
STARTUP_TIMEOUT_S = 240.0
SIM_CAMERA = 3  # replays a recording with /clock; its node runs on use_sim_time
REPLAY_S = 20.0  # length of that recording (looped with stamps going on; restarted: clock back)
FAULT_MODEL = "htnet"  # the lifter of camera 0 raises on its FAULT_CALL-th inference
FAULT_CALL = 150
RSS_GOAL_PCT = 5.0
OBSERVER = "soak_observer"  # this process: sampled, not held to the RSS goal (keeps all samples)
P95_FLAT_FACTOR = 1.5  # last minute's p95 within this factor of minute 2's (or the first full)


def _now_stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class Observer:
    """The soak's own ROS node: skeleton arrivals, diagnostics, frames published, /clock."""

    def __init__(self, node: Node, t0: float) -> None:
        self.node = node
        self.t0 = t0  # wall time (time.time()) of the soak's start
        self.lock = threading.Lock()
        self.latency: dict[str, list[tuple[float, float]]] = {}
        self.arrivals: dict[str, list[tuple[float, float, tuple[int, ...]]]] = {}  # t, stamp, ids
        self.diag: dict[str, list[tuple[float, dict[str, str]]]] = {}
        self.published: dict[str, int] = {}
        self.width: dict[str, int] = {}
        self.clock_wall: deque[tuple[int, float]] = deque(maxlen=600)  # (stamp ns, wall s)
        self.clock_jumps: list[tuple[float, float]] = []  # (t, how far back s)
        self._last_clock_ns = 0
        for k in range(CAMERAS):
            cam = f"cam{k}"
            self.latency[cam], self.arrivals[cam], self.diag[f"pose3d_{k}"] = [], [], []
            self.published[cam] = 0
            node.create_subscription(
                SkeletonArray, f"/{cam}/skeletons", self._skeletons(cam), QoSProfile(depth=50)
            )
            node.create_subscription(
                CameraInfo, f"/{cam}/camera_info", self._info(cam), qos_profile_sensor_data
            )
        node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diag, QoSProfile(depth=50)
        )
        node.create_subscription(Clock, "/clock", self._on_clock, QoSProfile(depth=50))

    def t(self) -> float:
        return time.time() - self.t0

    def _skeletons(self, cam: str):
        sim = cam == f"cam{SIM_CAMERA}"

        def callback(msg: SkeletonArray) -> None:
            now = time.time()
            stamp = _now_stamp(msg.header)
            if sim:  # recorded stamps: latency from when /clock announced that stamp
                ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                sent = next((w for s, w in reversed(self.clock_wall) if s == ns), None)
                latency = None if sent is None else (now - sent) * 1e3
            else:
                latency = (now - stamp) * 1e3
            ids = tuple(s.id for s in msg.skeletons)
            with self.lock:
                t = now - self.t0
                if latency is not None:
                    self.latency[cam].append((t, latency))
                self.arrivals[cam].append((t, stamp, ids))

        return callback

    def _info(self, cam: str):
        def callback(msg: CameraInfo) -> None:
            width = self.width.setdefault(cam, msg.width)
            if msg.width == width:  # the injected wrong-size camera_info is not a frame
                self.published[cam] += 1

        return callback

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            name = status.name.split(":")[0]
            if name in self.diag:
                with self.lock:
                    self.diag[name].append((self.t(), {kv.key: kv.value for kv in status.values}))

    def _on_clock(self, msg: Clock) -> None:
        ns = msg.clock.sec * 1_000_000_000 + msg.clock.nanosec
        with self.lock:
            if ns < self._last_clock_ns:
                self.clock_jumps.append((self.t(), (self._last_clock_ns - ns) * 1e-9))
            self._last_clock_ns = ns
            self.clock_wall.append((ns, time.time()))

    def diag_value(self, node: str, key: str) -> int:
        """The latest /diagnostics counter `key` of a node (0 before any)."""
        with self.lock:
            series = self.diag[node]
            return int(series[-1][1].get(key, 0)) if series else 0

    def arrivals_between(self, cam: str, t_from: float, t_to: float) -> list:
        with self.lock:
            return [a for a in self.arrivals[cam] if t_from <= a[0] < t_to]


class ProcStats:
    """RSS, CPU, fds and threads of processes from /proc, sampled every SAMPLE_PERIOD_S."""

    def __init__(self) -> None:
        self.samples: dict[str, list[dict]] = {}
        self._cpu: dict[str, tuple[float, float]] = {}
        self._tick = os.sysconf("SC_CLK_TCK")
        self.machine: list[dict] = []  # load average: other work on the machine shows here

    def sample(self, t: float, procs: dict[str, int]) -> None:
        load1 = float(Path("/proc/loadavg").read_text().split()[0])
        self.machine.append({"t_s": round(t, 1), "loadavg_1m": load1})
        for name, pid in procs.items():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
                stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                fds = len(os.listdir(f"/proc/{pid}/fd"))
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            rss = int(fields["VmRSS"].split()[0]) * 1024
            cpu_s = (int(stat[11]) + int(stat[12])) / self._tick  # utime + stime
            last = self._cpu.get(name)
            cpu_pct = None if last is None else 100 * (cpu_s - last[1]) / max(t - last[0], 1e-6)
            self._cpu[name] = (t, cpu_s)
            self.samples.setdefault(name, []).append(
                {
                    "t_s": round(t, 1),
                    "rss_mib": round(rss / 2**20, 1),
                    "cpu_pct": None if cpu_pct is None else round(cpu_pct, 1),
                    "fds": fds,
                    "threads": int(fields["Threads"]),
                }
            )


def write_replay_bag(path: Path, seconds: float, rate_hz: float) -> None:
    """A short rosbag2 (MCAP) of vtest.avi as JPEG CompressedImage on /image/compressed, stamps
    from 1000 s at rate_hz: what camera SIM_CAMERA replays in a loop with /clock."""
    import shutil

    from rclpy.serialization import serialize_message
    from rosbags.rosbag2 import StoragePlugin, Writer

    if path.exists():
        shutil.rmtree(path)
    cap = cv2.VideoCapture(str(FOOTAGE_DIR / "vtest.avi"))
    writer = Writer(path, version=8, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    conn = writer.add_connection(
        "/image/compressed", ros_type_name(CompressedImage), typestore=project_typestore()
    )
    for i in range(int(seconds * rate_hz)):
        ok, frame = cap.read()
        if not ok:
            break
        ns = 1_000_000_000_000 + round(i * 1e9 / rate_hz)
        msg = CompressedImage(format="", data=b"")
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(ns, 1_000_000_000)
        msg.header.frame_id = "camera_optical_frame"
        fields = encode_compressed(frame, "jpeg", quality=90)
        msg.format, msg.data = fields.format, fields.data
        writer.write(conn, ns, serialize_message(msg))
    writer.close()
    cap.release()


class Soak:
    """The graph, the observer, the sampler and the fault schedule of one soak run."""

    def __init__(self, duration_s: float, out_dir: Path, domain_id: int) -> None:
        self.duration_s = duration_s
        self.out_dir = out_dir
        self.graph = ProcessGraph(domain_id, out_dir / "logs")
        self.procs: dict[str, NodeProcess] = {}
        self.instances: dict[str, int] = {}  # name -> how many times started
        self.expected_exit: set[str] = set()
        self.crashes: list[dict] = []
        self.stats = ProcStats()
        self.extra: dict[str, subprocess.Popen] = {}
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = Node("soak_observer", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.obs = Observer(self.node, time.time())
        self._spin = threading.Thread(target=self._spin_loop, daemon=True)
        self._running = True

    def _spin_loop(self) -> None:
        while self._running:
            try:
                self.executor.spin_once(timeout_sec=0.1)
            except Exception:  # the context shutting down at the end
                if self._running:
                    raise

    # --- processes -------------------------------------------------------------------------

    def pose3d_spec(self, k: int) -> NodeSpec:
        params = {"publish_markers": False, "publish_debug_image": False}
        if k == SIM_CAMERA:
            params["use_sim_time"] = True
        return NodeSpec("pose3d_node", f"pose3d_{k}", "pose3d.yaml", params, lifecycle=True)

    def source_spec(self, k: int, bag: Path) -> NodeSpec:
        if k == SIM_CAMERA:
            params = {"input": str(bag), "loop": True, "publish_clock": True}
        else:
            params = {"input": str(FOOTAGE_DIR / "vtest.avi"), "loop": True, "rate": RATE_HZ}
        return NodeSpec("video_source_node", f"video_source_{k}", "camera_markers.yaml", params)

    def start(self, spec: NodeSpec, k: int, env: dict[str, str] | None = None) -> NodeProcess:
        saved = dict(self.graph.env)
        self.graph.env.update(env or {})
        try:
            proc = self.graph.start_spec(
                spec, config_file(spec.params_file), "-r", f"__ns:=/cam{k}"
            )
        finally:
            self.graph.env = saved
        n = self.instances.get(spec.name, 0)
        self.instances[spec.name] = n + 1
        self.procs[spec.name] = proc
        return proc

    def wait_publishing(self, cam: str, after_t: float, timeout_s: float) -> float | None:
        """Seconds (soak time) of the first skeleton message on `cam` after `after_t`, or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.obs.arrivals_between(cam, after_t, 1e12)
            if got:
                return got[0][0]
            time.sleep(0.2)
        return None

    def pids(self) -> dict[str, int]:
        out = {}
        for name, p in self.procs.items():
            if p.running():
                out[f"{name}#{self.instances[name]}" if self.instances[name] > 1 else name] = (
                    p.popen.pid
                )
        for name, p in self.extra.items():
            if p.poll() is None:
                out[name] = p.pid
        out[OBSERVER] = os.getpid()
        return out

    def check_crashes(self) -> None:
        for name, p in list(self.procs.items()):
            if not p.running() and name not in self.expected_exit:
                self.expected_exit.add(name)  # reported once
                self.crashes.append(
                    {
                        "process": name,
                        "t_s": round(self.obs.t(), 1),
                        "exit_code": p.popen.returncode,
                        "log_tail": p.log()[-2000:],
                    }
                )

    def sleep(self, seconds: float) -> None:
        """Sleep, sampling processes and noting crashes meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.5))
            self.check_crashes()
            if self.obs.t() >= self._next_sample:
                self._next_sample += SAMPLE_PERIOD_S
                self.stats.sample(self.obs.t(), self.pids())

    # --- the run ---------------------------------------------------------------------------

    def run(self) -> dict:
        """Start the graph, run the schedule for the duration, stop everything, report."""
        self._spin.start()
        try:
            results, end_t = self._run()
        finally:
            self.check_crashes()  # before stopping: what exits from here on was asked to
            self.expected_exit.update(self.procs)
            self._running = False
            self._spin.join(5)
            problems = self.graph.stop_all()
            for p in self.extra.values():
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)
        return self.build_report(end_t, results, problems)

    def _run(self) -> tuple[list[dict], float]:
        from pose3d_tools.soak import faults

        bag = self.bag = self.out_dir / "replay_bag"
        write_replay_bag(bag, REPLAY_S, RATE_HZ)
        print(f"soak: starting {CAMERAS} pose3d_nodes (models load) ...", flush=True)
        for k in range(CAMERAS):
            env = {"POSE3D_TEST_FAULT_INJECTION": f"{FAULT_MODEL}:{FAULT_CALL}"} if k == 0 else {}
            self.start(self.pose3d_spec(k), k, env)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while any(self.node.count_publishers(f"/cam{k}/skeletons") == 0 for k in range(CAMERAS)):
            for k in range(CAMERAS):
                if not self.procs[f"pose3d_{k}"].running():
                    raise RuntimeError(f"pose3d_{k} died:\n{self.procs[f'pose3d_{k}'].log()}")
            if time.monotonic() > deadline:
                raise RuntimeError("pose3d_nodes did not come up:\n" + self.graph.logs())
            time.sleep(0.2)
        for k in range(CAMERAS):
            self.start(self.source_spec(k, bag), k)
        for k in range(CAMERAS):
            if self.wait_publishing(f"cam{k}", -1e9, STARTUP_TIMEOUT_S) is None:
                raise RuntimeError(f"no skeletons on cam{k}:\n" + self.graph.logs())
        # The soak starts now: every node publishes. Earlier diagnostics move to negative times.
        with self.obs.lock:
            t0 = time.time()
            shift = t0 - self.obs.t0
            self.obs.t0 = t0
            for cam in self.obs.latency:
                self.obs.latency[cam].clear()
                self.obs.arrivals[cam].clear()
            for series in self.obs.diag.values():
                series[:] = [(t - shift, v) for t, v in series]
        self._next_sample = 0.0
        print(f"soak: all cameras publishing; running {self.duration_s:.0f} s", flush=True)
        results = []
        for at_s, fault in faults.schedule(self.duration_s):
            self.sleep(max(0.0, at_s - self.obs.t()))
            print(f"  {self.obs.t():6.1f} s: fault {fault.__name__}", flush=True)
            result = fault(self)
            if result is not None:
                print(f"     -> recovered={result['recovered']}: {result['detail']}", flush=True)
                results.append(result)
        self.sleep(max(0.0, self.duration_s - self.obs.t()))
        end_t = self.obs.t()
        results += faults.end_checks(self, end_t)
        self.stats.sample(self.obs.t(), self.pids())
        return results, end_t

    def build_report(self, duration: float, faults_done: list[dict], problems: list[str]) -> dict:
        obs = self.obs
        baseline = rep.rss_baseline_s(duration)
        growth = {}
        for name, samples in self.stats.samples.items():
            if name == OBSERVER:
                continue  # the measuring process keeps every sample: grows with the duration
            # A process started during the run (a restarted node) is measured from its own
            # start + the same warm-up.
            own = max(baseline, samples[0]["t_s"] + baseline) if samples[0]["t_s"] > 0 else baseline
            g = rep.rss_growth_pct([(s["t_s"], s["rss_mib"] * 2**20) for s in samples], own)
            if g is not None:
                growth[name] = round(g, 2)
        cameras = {}
        for k in range(CAMERAS):
            cam, node = f"cam{k}", f"pose3d_{k}"
            series = [v for _, v in obs.diag[node]]
            rates = sorted(float(v.get("input_rate_hz", 0)) for v in series[len(series) // 4 :])
            out_rates = sorted(
                float(v.get("output_rate_hz", 0)) for v in series[len(series) // 4 :]
            )
            minutes = rep.latency_by_minute(obs.latency[cam])
            cameras[cam] = {
                "node": node,
                "source": "replayed recording with /clock (use_sim_time)"
                if k == SIM_CAMERA
                else "vtest.avi looped at 30 Hz",
                **rep.frame_counts(obs.published[cam], series),
                "observed_publish_rate_hz": round(obs.published[cam] / max(duration, 1e-6), 2),
                "diagnostics_input_rate_hz_median": rates[len(rates) // 2] if rates else None,
                "skeleton_messages": len(obs.arrivals[cam]),
                "observed_output_rate_hz": round(len(obs.arrivals[cam]) / max(duration, 1e-6), 2),
                "diagnostics_output_rate_hz_median": out_rates[len(out_rates) // 2]
                if out_rates
                else None,
                "latency_ms_per_minute": minutes,
            }
        worst = max(growth.values()) if growth else None
        crashes = [c for c in self.crashes]
        p95_flat = {}
        for cam, c in cameras.items():
            rows = [r for r in c["latency_ms_per_minute"] if r["n"] >= 20]
            if len(rows) >= 2:
                ref = rows[1] if len(rows) >= 3 else rows[0]
                p95_flat[cam] = rows[-1]["p95"] <= P95_FLAT_FACTOR * ref["p95"]
        report = {
            "cameras": CAMERAS,
            "rate_hz": RATE_HZ,
            "duration_s": round(duration, 1),
            "mode": "one pose3d_node per camera (4 processes)",
            "crashes": crashes,
            "rss_growth_pct": worst,
            "rss_growth_pct_per_process": growth,
            "rss_baseline_s": baseline,
            "observer_rss_growth_pct": _observer_growth(self.stats.samples.get(OBSERVER), baseline),
            "cpu_pct_per_minute": rep.cpu_per_minute(self.stats.samples),
            "loadavg_1m": self.stats.machine,
            "latency_ms": {cam: c["latency_ms_per_minute"] for cam, c in cameras.items()},
            "per_camera": cameras,
            "faults": faults_done,
            "processes": self.stats.samples,
            "stop_problems": [p.splitlines()[0] for p in problems],
            "goals": {
                "no_crash": not crashes,
                f"rss_growth_le_{RSS_GOAL_PCT:g}_pct": worst is not None and worst <= RSS_GOAL_PCT,
                "latency_p95_flat": all(p95_flat.values()) if p95_flat else None,
                "all_faults_recovered": all(
                    f["recovered"] for f in faults_done if f["recovered"] is not None
                ),
            },
            "latency_p95_flat_per_camera": p95_flat,
        }
        return report


def _observer_growth(samples: list[dict] | None, baseline: float) -> float | None:
    if not samples:
        return None
    g = rep.rss_growth_pct([(s["t_s"], s["rss_mib"] * 2**20) for s in samples], baseline)
    return None if g is None else round(g, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default 600)")
    parser.add_argument("--out", default="out/soak")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in ("report.json", "report.png"):  # never a previous run's report
        (out / stale).unlink(missing_ok=True)
    # The Fast DDS profile `make` exports (16 MiB shared memory for images), also when run alone.
    os.environ.setdefault("FASTRTPS_DEFAULT_PROFILES_FILE", str(config_file("fastdds_shm.xml")))
    import domain_coordinator

    with domain_coordinator.domain_id() as domain_id:
        soak = Soak(args.duration, out, domain_id)
        report = soak.run()
    (out / "report.json").write_text(json.dumps(report, indent=1))
    rep.plot(
        report,
        {
            "latency": soak.obs.latency,
            "rss": {
                n: [(s["t_s"], s["rss_mib"] * 2**20) for s in v]
                for n, v in soak.stats.samples.items()
            },
        },
        out / "report.png",
    )
    print(json.dumps({k: report[k] for k in ("duration_s", "rss_growth_pct", "goals")}, indent=1))
    for c, v in report["per_camera"].items():
        print(
            c,
            {
                k: v[k]
                for k in (
                    "frames_published",
                    "frames_in",
                    "frames_processed",
                    "frames_dropped",
                    "frames_failed",
                    "frames_skipped",
                )
            },
        )
    for f in report["faults"]:
        print(f"fault {f['kind']}: recovered={f['recovered']}: {f['detail']}")
    print(f"soak: {out / 'report.json'}, {out / 'report.png'}")
    return 0 if all(v is not False for v in report["goals"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
