"""`make demo`: the real ROS graph on the embedded default footage, recorded and summarised.

    video_source_node (vtest.avi) -> pose3d_node -> skeleton_markers_node
                                          \\-> this process: rosbag2 (MCAP) + summary + demo.mp4

`ros2 launch pose3d_ros demo.launch.py` is the same graph on a robot: both take it from
pose3d_ros.ros.demo_graph. Here (ROS from PyPI wheels, no `launch`) the nodes are started as
processes on a private DDS domain; pose3d_node configures and activates itself (autostart). The
bag also holds the input images as JPEG (sensor_msgs/CompressedImage on `/image/compressed`), so
Foxglove shows the skeletons over the footage. Latency is measured
where a user would see it: the time a SkeletonArray arrives in another process minus the stamp
of the image it describes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from hri_msgs.msg import IdsList
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from tf2_msgs.msg import TFMessage
from visualization_msgs.msg import MarkerArray

from pose3d_msgs.msg import SkeletonArray
from pose3d_ros.assets import config_file
from pose3d_ros.core.image_encoding import encode_compressed
from pose3d_ros.core.poses import TrackState
from pose3d_ros.ros.demo_graph import (
    CAMERA_INFO_TOPIC,
    COMPRESSED_IMAGE_TOPIC,
    IMAGE_TOPIC,
    MARKERS_TOPIC,
    SKELETONS_TOPIC,
    NodeSpec,
    demo_graph,
)
from pose3d_ros.ros.messages import image_msg_to_bgr, skeleton_msg_to_pose
from pose3d_ros.ros.process_graph import ProcessGraph
from pose3d_ros.ros.rep155 import TRACKED_TOPIC
from pose3d_ros.visualization import SceneView, draw_poses_2d, side_by_side
from pose3d_tools import FOOTAGE_DIR
from pose3d_tools.bag_recorder import BagRecorder

DEFAULT_INPUT = FOOTAGE_DIR / "vtest.avi"
# vtest.avi's camera looks down on a flat square, but nothing about it is known. The demo places
# people on an ASSUMED floor (camera optical frame: up normal, camera height in m), said on
# screen: the plane fitted once to the size-prior ankle positions of 300 frames under the 60 deg
# field-of-view assumption, i.e. it assumes people of average size (camera 5.6 m above the
# square, looking 24 deg down). It shows the floor mode at work, it does not measure it (that is
# `make eval`'s S9/S11 figure).
VTEST_FLOOR = (-0.063, -0.910, -0.409, 5.58)
IMAGE_BUFFER = 64  # images kept while waiting for their skeletons (bounded)
JPEG_QUALITY = 85  # the bag's input images: ~10x smaller than raw, artefacts invisible at 768x576


def _stamp(header) -> float:
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class DemoObserver:
    """Records the graph's output and renders the demo video as results arrive."""

    def __init__(self, node: Node, out_dir: Path, fps: float) -> None:
        self.node = node
        self.out_dir = out_dir
        self.fps = fps
        self.bag = BagRecorder(
            node,
            out_dir / "bag",
            {
                SKELETONS_TOPIC: SkeletonArray,
                MARKERS_TOPIC: MarkerArray,
                CAMERA_INFO_TOPIC: CameraInfo,
                "/diagnostics": DiagnosticArray,
                "/tf": TFMessage,  # REP-155 body_<id> and joint frames
                TRACKED_TOPIC: IdsList,
            },
            written={COMPRESSED_IMAGE_TOPIC: CompressedImage},
        )
        self.images: dict[float, np.ndarray] = {}
        self.frames_in = 0
        self.frames_processed = 0
        self.skeletons = 0
        self.ids: set[int] = set()  # confirmed tracks: people followed over several frames
        self.tentative_ids: set[int] = set()
        self.latencies_ms: list[float] = []
        self.diagnostics: dict[str, str] = {}
        self.view: SceneView | None = None
        self.placements: dict[str, int] = {}  # people per placement constraint
        self.caption = ""  # drawn on every video frame (the demo's assumptions)
        self.writer: cv2.VideoWriter | None = None
        node.create_subscription(Image, IMAGE_TOPIC, self._on_image, QoSProfile(depth=50))
        node.create_subscription(
            SkeletonArray, SKELETONS_TOPIC, self._on_skeletons, QoSProfile(depth=50)
        )
        node.create_subscription(
            DiagnosticArray, "/diagnostics", self._on_diag, QoSProfile(depth=10)
        )

    def _on_image(self, msg: Image) -> None:
        self.frames_in += 1
        image = image_msg_to_bgr(msg)
        self.images[_stamp(msg.header)] = image
        # Into the bag as image_transport's compressed form, with the image's own header.
        fields = encode_compressed(image, "jpeg", quality=JPEG_QUALITY)
        self.bag.write(
            COMPRESSED_IMAGE_TOPIC,
            CompressedImage(header=msg.header, format=fields.format, data=fields.data),
        )
        while len(self.images) > IMAGE_BUFFER:
            self.images.pop(next(iter(self.images)))

    def _on_skeletons(self, msg: SkeletonArray) -> None:
        now = self.node.get_clock().now().nanoseconds * 1e-9
        stamp = _stamp(msg.header)
        self.latencies_ms.append((now - stamp) * 1e3)
        self.frames_processed += 1
        poses = [skeleton_msg_to_pose(s) for s in msg.skeletons]
        observed = [p for p in poses if p.observed.any()]
        self.skeletons += len(observed)
        self.ids.update(p.track_id for p in observed if p.state == TrackState.CONFIRMED)
        for p in observed:
            key = p.placement or "none"
            self.placements[key] = self.placements.get(key, 0) + 1
        self.tentative_ids.update(p.track_id for p in observed if p.state == TrackState.TENTATIVE)
        image = self.images.get(stamp)
        if image is None:
            return
        for old in [t for t in self.images if t <= stamp]:
            del self.images[old]
        if self.view is None:
            h = image.shape[0]
            self.view = SceneView(width=round(h * 4 / 3), height=h, depth_range=(0.5, 20.0))
        panel = side_by_side(draw_poses_2d(image, poses), self.view.render(poses))
        if self.caption:
            on_floor = sum(p.placement == "floor" for p in observed)
            text = f"{self.caption}; on the floor now: {on_floor} of {len(observed)}"
            for colour, width in (((0, 0, 0), 3), ((255, 255, 255), 1)):  # outlined, readable
                cv2.putText(panel, text, (8, panel.shape[0] - 10), cv2.FONT_HERSHEY_SIMPLEX,
                            0.5, colour, width, cv2.LINE_AA)
        if self.writer is None:
            h, w = panel.shape[:2]
            self.writer = cv2.VideoWriter(
                str(self.out_dir / "demo.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h)
            )
        self.writer.write(panel)

    def _on_diag(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if "pose3d" in status.name:
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def close(self) -> None:
        self.bag.close()
        if self.writer is not None:
            self.writer.release()


def demo_specs(args: argparse.Namespace) -> list[NodeSpec]:
    """The shared demo graph with this run's video source settings."""
    source = {
        "input": str(args.input),
        "horizontal_fov_deg": float(args.fov),
        # pose3d_node and this observer: the first frame waits until both listen.
        "wait_for_subscribers": 2,
        "max_frames": int(args.max_frames),
    }
    if args.rate > 0:
        source["rate"] = float(args.rate)
    return demo_graph(source, pose3d_parameters=floor_parameters(demo_floor(args)))


def demo_floor(args: argparse.Namespace) -> tuple[float, float, float, float] | None:
    """The floor plane the demo assumes: --floor, else VTEST_FLOOR for the default clip only."""
    if getattr(args, "no_floor", False):
        return None
    if getattr(args, "floor", None):
        return tuple(float(v) for v in args.floor)  # type: ignore[return-value]
    return VTEST_FLOOR if Path(args.input) == DEFAULT_INPUT else None


def floor_parameters(plane: tuple[float, float, float, float] | None) -> dict[str, object]:
    """pose3d_node's static floor-plane parameters for ``plane`` (normal x, y, z; height m)."""
    if plane is None:
        return {}
    nx, ny, nz, d = plane
    prefix = "pipeline.placement.floor."
    return {prefix + "enabled": True, prefix + "normal_x": nx, prefix + "normal_y": ny,
            prefix + "normal_z": nz, prefix + "distance_m": d}


def run_demo(args: argparse.Namespace) -> dict:
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("bag", "demo.mp4", "summary.json"):
        path = out_dir / stale
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    import domain_coordinator

    with domain_coordinator.domain_id() as domain_id:
        graph = ProcessGraph(domain_id, out_dir / "logs")
        context = Context()
        rclpy.init(context=context, domain_id=domain_id)
        node = Node("pose3d_demo_observer", context=context)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        observer = DemoObserver(node, out_dir, fps=args.video_fps)
        plane = demo_floor(args)
        if plane is not None:
            observer.caption = (f"ASSUMED floor: camera {plane[3]:.1f} m above a flat floor, "
                                f"up = ({plane[0]:.2f}, {plane[1]:.2f}, {plane[2]:.2f})")
        specs = {spec.name: spec for spec in demo_specs(args)}
        source_spec = specs.pop("video_source")
        try:
            processes = {
                name: graph.start_spec(spec, config_file(spec.params_file))
                for name, spec in specs.items()
            }
            pose3d = processes["pose3d"]
            # Models load before pose3d_node advertises its topics: start the video after.
            deadline = time.monotonic() + 120
            while node.count_publishers(SKELETONS_TOPIC) == 0:
                if not pose3d.running() or time.monotonic() > deadline:
                    raise RuntimeError(f"pose3d_node did not come up:\n{pose3d.log()}")
                executor.spin_once(timeout_sec=0.1)
            source = graph.start_spec(source_spec, config_file(source_spec.params_file))
            print(
                f"demo: ROS domain {domain_id}; running {args.input} through the graph "
                f"(logs in {out_dir / 'logs'}) ...",
                flush=True,
            )
            start = time.monotonic()
            last_report = start
            while source.running():
                if not pose3d.running():
                    raise RuntimeError(f"pose3d_node died:\n{pose3d.log()}")
                executor.spin_once(timeout_sec=0.05)
                if time.monotonic() - last_report > 10:
                    last_report = time.monotonic()
                    print(
                        f"  {time.monotonic() - start:5.0f} s: {observer.frames_in} frames in, "
                        f"{observer.frames_processed} processed, {len(observer.ids)} tracks",
                        flush=True,
                    )
            end_input = time.monotonic()
            # Let the last frame through the pipeline.
            deadline = time.monotonic() + 5.0
            while time.monotonic() < deadline:
                executor.spin_once(timeout_sec=0.05)
            duration = end_input - start
        finally:
            problems = graph.stop_all()
            observer.close()
            executor.shutdown()
            node.destroy_node()
            rclpy.try_shutdown(context=context)
        for p in problems:
            print(f"demo: warning: {p.splitlines()[0]}", file=sys.stderr)

    lat = np.asarray(observer.latencies_ms)
    diag = observer.diagnostics
    summary = {
        "input": str(args.input),
        "camera": f"ASSUMED {args.fov:g} deg horizontal field of view (no calibration)",
        "floor": (f"ASSUMED plane {list(demo_floor(args))} (up normal in the camera optical "
                  "frame, camera height m)" if demo_floor(args) else None),
        "placements": dict(sorted(observer.placements.items())),  # people per constraint
        "frames_in": observer.frames_in,
        "frames_processed": observer.frames_processed,
        "frames_dropped": int(diag.get("frames_dropped", 0)),
        "skeletons_published": observer.skeletons,
        "tracks": len(observer.ids),
        "tentative_tracks_never_confirmed": len(observer.tentative_ids - observer.ids),
        "fps_processed": round(observer.frames_processed / duration, 2) if duration > 0 else 0.0,
        "latency_ms": {
            "p50": round(float(np.percentile(lat, 50)), 1) if lat.size else None,
            "p95": round(float(np.percentile(lat, 95)), 1) if lat.size else None,
        },
        "stages_ms": {
            k.split(".", 1)[1]: float(v) for k, v in diag.items() if k.startswith("stage_ms.")
        },
        "backend": diag.get("backend", ""),
        "bag": str(out_dir / "bag"),
        "bag_messages": dict(observer.bag.counts),  # per topic
        "video": str(out_dir / "demo.mp4"),
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", default=str(DEFAULT_INPUT))
    parser.add_argument("--out", default="out/demo")
    parser.add_argument("--fov", type=float, default=60.0, help="assumed horizontal FOV (deg)")
    parser.add_argument("--rate", type=float, default=0.0, help="source rate (0 = the file's)")
    parser.add_argument("--max-frames", type=int, default=0, help="0 = the whole clip")
    parser.add_argument("--video-fps", type=float, default=10.0)
    parser.add_argument("--floor", type=float, nargs=4, metavar=("NX", "NY", "NZ", "D"),
                        help="floor plane for placement (camera optical frame up normal, camera "
                        "height m); default: an assumed plane for vtest.avi only")
    parser.add_argument("--no-floor", action="store_true", help="size prior only")


def add_demo_parser(sub: argparse._SubParsersAction) -> None:
    """``pose3d-tools demo`` (what `make demo` runs)."""
    p = sub.add_parser("demo", help="run the ROS graph on the demo footage -> out/demo/")
    _add_arguments(p)
    p.set_defaults(func=cmd_demo)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _add_arguments(parser)
    return cmd_demo(parser.parse_args(argv))


def cmd_demo(args: argparse.Namespace) -> int:
    if not Path(args.input).exists():
        print(
            f"demo: {args.input} not found: run `make setup` (it fetches the footage)",
            file=sys.stderr,
        )
        return 2
    summary = run_demo(args)
    print("\ndemo finished. Outputs:")
    print(
        f"  {args.out}/summary.json, {args.out}/demo.mp4, {args.out}/bag/ (rosbag2, MCAP; "
        f"skeletons, markers and the input as JPEG on {COMPRESSED_IMAGE_TOPIC})"
    )
    headline = {
        k: summary[k]
        for k in (
            "frames_in",
            "frames_processed",
            "frames_dropped",
            "skeletons_published",
            "tracks",
            "fps_processed",
            "latency_ms",
            "placements",
            "stages_ms",
            "backend",
        )
    }
    print(json.dumps(headline, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
