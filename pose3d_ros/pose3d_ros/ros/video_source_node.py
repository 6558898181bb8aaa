"""video_source_node: a video file, image folder, still image, V4L2 camera or a rosbag2
recording as a ROS camera.

Publishes `image` (sensor_msgs/Image) and `camera_info` with identical headers, at the input's
own frame rate or a set rate. Intrinsics come from a camera_calibration YAML file or, when none
is given, from a horizontal field of view (an assumption that is logged).

A rosbag2 input (MCAP or SQLite3 folder) replays one Image or CompressedImage topic with the
recorded headers (stamp and frame_id unchanged, so nodes on `use_sim_time` and TF lookups see the
recorded time) at the recorded timing, with the bag's CameraInfo when it has one; `publish_clock`
also drives /clock from those stamps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
from builtin_interfaces.msg import Time
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from pose3d_ros.core.bag_source import BagFrame, BagImageSource, is_rosbag2
from pose3d_ros.core.camera import CameraModel, load_camera_yaml
from pose3d_ros.core.frame_sources import FrameSource, open_source
from pose3d_ros.core.image_encoding import ImageEncodingError
from pose3d_ros.core.parameters import SettingError, setting
from pose3d_ros.ros.lifecycle import NodeFinished, run_node
from pose3d_ros.ros.messages import array_to_image_msg, camera_model_to_msg
from pose3d_ros.ros.ros_parameters import NodeSettings

FALLBACK_RATE_HZ = 30.0


@dataclass(frozen=True)
class VideoSourceSettings:
    input: str = setting(
        "",
        "Video file, image folder, still image, camera (index or /dev/videoN), or rosbag2 "
        "folder (MCAP or SQLite3)",
        read_only=True,
    )
    rate: float = setting(
        0.0,
        "Publish rate; 0 = the input's own frame rate (30 Hz if it has none; a rosbag2: the "
        "recorded timing)",
        range=(0.0, 1000.0),
        unit="Hz",
    )
    loop: bool = setting(False, "Start again at the end of the input instead of exiting")
    max_frames: int = setting(0, "Stop after this many frames (0 = no limit)", range=(0, 2**31 - 1))
    frame_id: str = setting(
        "camera_optical_frame",
        "frame_id of the published images (a REP-103 optical frame); a rosbag2 keeps its "
        "recorded frame_id",
    )
    camera_info_file: str = setting(
        "",
        "camera_calibration YAML with the intrinsics; empty = use horizontal_fov_deg",
        read_only=True,
    )
    horizontal_fov_deg: float = setting(
        60.0,
        "Assumed horizontal field of view when no camera_info_file is given",
        range=(10.0, 170.0),
        unit="deg",
        read_only=True,
    )
    encoding: str = setting(
        "bgr8", "Encoding of published images", choices=("bgr8", "rgb8", "mono8")
    )
    wait_for_subscribers: int = setting(
        0,
        "Hold the first frame until this many subscribers listen on `image` (0 = start at once)",
        range=(0, 100),
    )
    bag_topic: str = setting(
        "",
        "Image or CompressedImage topic to replay when `input` is a rosbag2 (empty: the bag's "
        "only image topic)",
        read_only=True,
    )
    bag_camera_info_topic: str = setting(
        "",
        "CameraInfo topic of the rosbag2 (empty: `<ns>/camera_info` beside bag_topic, or the "
        "bag's only one; a bag without any uses camera_info_file / horizontal_fov_deg)",
        read_only=True,
    )
    publish_clock: bool = setting(
        False,
        "With a rosbag2 input, publish /clock from the recorded stamps (for nodes running "
        "with use_sim_time)",
        read_only=True,
    )


class VideoSourceNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("video_source", **kwargs)
        self.settings = NodeSettings(self, VideoSourceSettings, on_change=self._on_change)
        s = self.settings.current
        if not s.input:
            raise SettingError(
                "parameter 'input' is required (video file, folder, image, camera or rosbag2)"
            )
        self._source = self._open(s)
        self._bag = isinstance(self._source, BagImageSource)
        width, height = self._source.size
        # Built once: only the header changes from frame to frame (a bag's own CameraInfo is
        # converted when it changes).
        self._fallback_info = camera_model_to_msg(self._make_camera(s, width, height), Header())
        self._bag_camera: CameraModel | None = None
        self._bag_info: CameraInfo | None = None
        self._image_pub = self.create_publisher(Image, "image", QoSProfile(depth=2))
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", QoSProfile(depth=2))
        self._clock_pub = (
            self.create_publisher(Clock, "/clock", QoSProfile(depth=10))
            if self._bag and s.publish_clock
            else None
        )
        self._published = 0
        self._next: BagFrame | None = None  # a bag's frame waiting for its recorded time
        self._finished = False
        self._replay_start: tuple[float, int] | None = None  # (monotonic s, recorded ns)
        self._timer = None
        self._arm(s)
        timing = (
            "the recorded timing" if self._replays_recorded_timing(s) else f"{self._rate(s):.1f} Hz"
        )
        self.get_logger().info(
            f"publishing {s.input} ({width}x{height}) at {timing} as "
            f"{self._frame_text(s)}{' in a loop' if s.loop else ''}"
        )

    def _open(self, s: VideoSourceSettings) -> FrameSource:
        if is_rosbag2(s.input):
            return BagImageSource(
                s.input, s.bag_topic, camera_info_topic=s.bag_camera_info_topic, loop=s.loop
            )
        if s.bag_topic:
            raise SettingError(
                f"bag_topic is set but input {s.input!r} is no rosbag2 folder (no metadata.yaml)"
            )
        return open_source(s.input, loop=s.loop)

    def _frame_text(self, s: VideoSourceSettings) -> str:
        if self._bag:
            src = self._source
            info = f", camera_info from {src.camera_info_topic}" if src.camera_info_topic else ""
            return f"{src.topic} with its recorded headers{info}"
        return f"frame '{s.frame_id}'"

    def _replays_recorded_timing(self, s: VideoSourceSettings) -> bool:
        return self._bag and s.rate <= 0

    def _rate(self, s: VideoSourceSettings) -> float:
        if s.rate > 0:
            return s.rate
        return self._source.fps or FALLBACK_RATE_HZ

    def _arm(self, s: VideoSourceSettings, delay_s: float | None = None) -> None:
        """(Re)start the timer: periodic at the rate, or once after `delay_s` (recorded timing)."""
        if self._timer is not None:
            self._timer.cancel()
            self.destroy_timer(self._timer)
        period = 1.0 / self._rate(s) if delay_s is None else max(delay_s, 1e-4)
        self._timer = self.create_timer(period, self._tick)

    def _make_camera(self, s: VideoSourceSettings, width: int, height: int) -> CameraModel:
        if not s.camera_info_file:
            if self._bag and self._source.camera_info_topic:
                # The bag's CameraInfo is used; this only covers images before the first one.
                return CameraModel.from_fov(width, height, s.horizontal_fov_deg)
            self.get_logger().warning(
                f"no camera_info_file: ASSUMING a {s.horizontal_fov_deg:.0f} deg horizontal field "
                "of view, centred principal point and no distortion; metric 3D depends on it"
            )
            return CameraModel.from_fov(width, height, s.horizontal_fov_deg)
        camera = load_camera_yaml(s.camera_info_file)
        if (camera.width, camera.height) != (width, height):
            self.get_logger().warning(
                f"{s.camera_info_file} is for {camera.width}x{camera.height} but the input is "
                f"{width}x{height}: scaling the intrinsics"
            )
            camera = camera.resized(width, height)
        return camera

    def _on_change(self, old: VideoSourceSettings, new: VideoSourceSettings) -> None:
        if new.rate != old.rate:
            self._replay_start = None  # recorded timing restarts from the next frame
            self._arm(new, 0.0 if self._replays_recorded_timing(new) else None)

    def _tick(self) -> None:
        s = self.settings.current
        recorded = self._replays_recorded_timing(s)
        if (
            self._published == 0
            and self._image_pub.get_subscription_count() < s.wait_for_subscribers
        ):
            if recorded:
                self._arm(s, 0.05)
            return
        if self._finished:
            raise NodeFinished
        if s.max_frames and self._published >= s.max_frames:
            self.get_logger().info(f"published max_frames={s.max_frames}: stopping")
            raise NodeFinished
        frame = self._next if self._next is not None else self._read()
        self._next = None
        self._publish(s, frame)
        if recorded:
            self._schedule_next(s, frame)

    def _read(self):
        try:
            frame = self._source.read()
        except ValueError as e:  # e.g. an image of another size in a folder, a damaged bag
            self.get_logger().error(f"cannot read the next frame: {e}")
            raise NodeFinished from e
        if frame is None:
            self.get_logger().info(f"end of input after {self._published} frames: stopping")
            raise NodeFinished
        return frame

    def _schedule_next(self, s: VideoSourceSettings, frame: BagFrame) -> None:
        """Arm the timer for the next frame at its recorded time, measured from the replay start
        (so timer latencies do not add up)."""
        now = time.monotonic()
        if self._replay_start is None:
            self._replay_start = (now, frame.recorded_ns)
        mean_period = 1.0 / (self._source.fps or FALLBACK_RATE_HZ)
        if s.max_frames and self._published >= s.max_frames:
            self._arm(s, mean_period)  # that tick stops
            return
        try:
            self._next = self._read()
        except NodeFinished:
            self._finished = True  # stop one frame later: the last frame is on its way
            self._arm(s, mean_period)
            return
        if self._next.cycle != frame.cycle:  # looping: the recording starts again
            self._replay_start = None
            self._arm(s, mean_period)
            return
        start_wall, start_recorded = self._replay_start
        due = start_wall + (self._next.recorded_ns - start_recorded) * 1e-9
        self._arm(s, due - now)

    def _publish(self, s: VideoSourceSettings, frame) -> None:
        if isinstance(frame, BagFrame):
            sec, nanosec = divmod(frame.stamp_ns, 1_000_000_000)
            stamp = Time(sec=sec, nanosec=nanosec)
            header = Header(stamp=stamp, frame_id=frame.frame_id or s.frame_id)
            info = self._info_for(frame.camera)
        else:
            header = Header(stamp=self.get_clock().now().to_msg(), frame_id=s.frame_id)
            info = self._fallback_info
        image = frame.image
        if s.encoding == "rgb8":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        elif s.encoding == "mono8":
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        try:
            msg = array_to_image_msg(image, s.encoding, header)
        except ImageEncodingError as e:
            self.get_logger().error(f"frame {frame.index}: {e}")
            return
        if self._clock_pub is not None:
            self._clock_pub.publish(Clock(clock=header.stamp))
        info.header = header
        self._info_pub.publish(info)
        self._image_pub.publish(msg)
        self._published += 1

    def _info_for(self, camera: CameraModel | None) -> CameraInfo:
        """The bag's CameraInfo (converted when it changes), else the fallback."""
        if camera is None:
            return self._fallback_info
        if camera != self._bag_camera:
            if (camera.width, camera.height) != self._source.size:
                self.get_logger().warning(
                    f"the bag's camera_info is for {camera.width}x{camera.height} but its images "
                    f"are {self._source.size[0]}x{self._source.size[1]}: scaling the intrinsics",
                    throttle_duration_sec=5.0,
                )
                camera = camera.resized(*self._source.size)
            self._bag_camera = camera
            self._bag_info = camera_model_to_msg(camera, Header())
        return self._bag_info

    def close(self) -> None:
        self._source.close()


def main(args: list[str] | None = None) -> int:
    return run_node(VideoSourceNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
