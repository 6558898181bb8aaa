"""video_source_node: a video file, image folder, still image or V4L2 camera as a ROS camera.

Publishes `image` (sensor_msgs/Image) and `camera_info` with identical headers, at the input's
own frame rate or a set rate. Intrinsics come from a camera_calibration YAML file or, when none
is given, from a horizontal field of view (an assumption that is logged).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
from rclpy.node import Node
from rclpy.qos import QoSProfile
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from pose3d_ros.core.camera import CameraModel, load_camera_yaml
from pose3d_ros.core.frame_sources import open_source
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
        "Video file, image folder, still image, or camera (index or /dev/videoN)",
        read_only=True,
    )
    rate: float = setting(
        0.0,
        "Publish rate; 0 = the input's own frame rate (30 Hz if it has none)",
        range=(0.0, 1000.0),
        unit="Hz",
    )
    loop: bool = setting(False, "Start again at the end of the input instead of exiting")
    max_frames: int = setting(0, "Stop after this many frames (0 = no limit)", range=(0, 2**31 - 1))
    frame_id: str = setting(
        "camera_optical_frame", "frame_id of the published images (a REP-103 optical frame)"
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


class VideoSourceNode(Node):
    def __init__(self, **kwargs) -> None:
        super().__init__("video_source", **kwargs)
        self.settings = NodeSettings(self, VideoSourceSettings, on_change=self._on_change)
        s = self.settings.current
        if not s.input:
            raise SettingError(
                "parameter 'input' is required (video file, folder, image or camera)"
            )
        self._source = open_source(s.input, loop=s.loop)
        width, height = self._source.size
        # Built once: only the header changes from frame to frame.
        self._camera_info = camera_model_to_msg(self._make_camera(s, width, height), Header())
        self._image_pub = self.create_publisher(Image, "image", QoSProfile(depth=2))
        self._info_pub = self.create_publisher(CameraInfo, "camera_info", QoSProfile(depth=2))
        self._published = 0
        self._timer = self.create_timer(1.0 / self._rate(s), self._tick)
        self.get_logger().info(
            f"publishing {s.input} ({width}x{height}) at {self._rate(s):.1f} Hz as "
            f"frame '{s.frame_id}'{' in a loop' if s.loop else ''}"
        )

    def _rate(self, s: VideoSourceSettings) -> float:
        if s.rate > 0:
            return s.rate
        return self._source.fps or FALLBACK_RATE_HZ

    def _make_camera(self, s: VideoSourceSettings, width: int, height: int) -> CameraModel:
        if not s.camera_info_file:
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
            self._timer.cancel()
            self.destroy_timer(self._timer)
            self._timer = self.create_timer(1.0 / self._rate(new), self._tick)

    def _tick(self) -> None:
        s = self.settings.current
        if (
            self._published == 0
            and self._image_pub.get_subscription_count() < s.wait_for_subscribers
        ):
            return
        if s.max_frames and self._published >= s.max_frames:
            self.get_logger().info(f"published max_frames={s.max_frames}: stopping")
            raise NodeFinished
        try:
            frame = self._source.read()
        except ValueError as e:  # e.g. an image of another size in a folder
            self.get_logger().error(f"cannot read the next frame: {e}")
            raise NodeFinished from e
        if frame is None:
            self.get_logger().info(f"end of input after {self._published} frames: stopping")
            raise NodeFinished
        header = Header(stamp=self.get_clock().now().to_msg(), frame_id=s.frame_id)
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
        self._camera_info.header = header
        self._info_pub.publish(self._camera_info)
        self._image_pub.publish(msg)
        self._published += 1

    def close(self) -> None:
        self._source.close()


def main(args: list[str] | None = None) -> int:
    return run_node(VideoSourceNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
