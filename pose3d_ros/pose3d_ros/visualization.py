"""Pictures of poses for people: 2D overlays on the image and a 3D view of the skeletons.

Used by the node's debug image, `pose3d run` and the demo video. OpenCV only (fast enough to
draw every frame; matplotlib is kept for offline plots).
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

import cv2
import numpy as np

from pose3d_ros.core.poses import PersonPose, TrackState
from pose3d_ros.core.skeletons import joint_set


def track_colour_rgb(track_id: int) -> tuple[float, float, float]:
    """A distinct, stable colour per id, RGB in [0, 1]: golden-ratio hue steps keep consecutive
    ids far apart on the colour wheel. The one source of track colours (overlays and RViz)."""
    hue = (track_id * 0.618033988749895) % 1.0
    return colorsys.hsv_to_rgb(hue, 0.85, 0.95)


def track_colour_bgr(track_id: int) -> tuple[int, int, int]:
    """:func:`track_colour_rgb` as 8-bit BGR for OpenCV drawing."""
    r, g, b = track_colour_rgb(track_id)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_poses_2d(
    image: np.ndarray, poses: Sequence[PersonPose], min_confidence: float = 0.0
) -> np.ndarray:
    """Draw keypoints, bones, boxes and ids on a copy of a BGR image.

    A person hidden this frame (coasting: no observed joint, a predicted box) gets no box, only
    a bracketed id where they are expected, so an empty box is never mistaken for a detection.
    Labels are placed so that they do not cover each other (:func:`place_labels`).
    """
    out = image.copy()
    thickness = max(1, round(min(out.shape[:2]) / 300))
    scale = 0.4 + 0.1 * thickness
    labels: list[tuple[str, tuple[int, int, int], np.ndarray]] = []
    for pose in poses:
        colour = track_colour_bgr(pose.track_id)
        pts = pose.keypoints_2d
        ok = pose.observed & np.isfinite(pts).all(-1) & (pose.confidence >= min_confidence)
        for parent, child in joint_set(pose.joint_set).bones:
            if ok[parent] and ok[child]:
                p, c = pts[parent], pts[child]
                cv2.line(
                    out,
                    (round(p[0]), round(p[1])),
                    (round(c[0]), round(c[1])),
                    colour,
                    thickness,
                    cv2.LINE_AA,
                )
        for j in np.flatnonzero(ok):
            cv2.circle(
                out, (round(pts[j, 0]), round(pts[j, 1])), thickness + 1, colour, -1, cv2.LINE_AA
            )
        if not np.isfinite(pose.bbox).all():
            continue
        if pose.state == TrackState.COASTING or not ok.any():
            labels.append((f"({pose.track_id})", _dim(colour), pose.bbox))
            continue
        x0, y0, x1, y1 = (round(v) for v in pose.bbox)
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 1)
        label = f"id {pose.track_id}"
        if np.isfinite(pose.root).all():
            label += f" {pose.root[2]:.1f}m"
        labels.append((label, colour, pose.bbox))

    sizes = []
    for text, _, _ in labels:
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        sizes.append((w + 4, h + base + 4))
    corners = place_labels([b for _, _, b in labels], sizes, (out.shape[1], out.shape[0]))
    for (text, colour, _), (w, h), (x, y) in zip(labels, sizes, corners, strict=True):
        patch = out[y : y + h, x : x + w]
        patch[:] = (patch * 0.4).astype(np.uint8)  # darken behind the text: readable anywhere
        cv2.putText(
            out,
            text,
            (x + 2, y + h - 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            colour,
            thickness,
            cv2.LINE_AA,
        )
    return out


def place_labels(
    boxes: Sequence[np.ndarray], sizes: Sequence[tuple[int, int]], image_size: tuple[int, int]
) -> list[tuple[int, int]]:
    """Top-left corners (pixels) for one label per person box, no two labels overlapping.

    Each label prefers the spot just above its box's top-left corner; if that is taken (or
    outside the image) it tries just inside the box top, then further up and down in steps of
    its own height, then sideways. Boxes are placed top to bottom, so the result does not depend
    on the order people arrive in. ``image_size`` is (width, height); labels stay inside it.
    """
    width, height = image_size
    placed: list[tuple[int, int, int, int]] = []
    corners: list[tuple[int, int]] = [(0, 0)] * len(boxes)
    order = sorted(range(len(boxes)), key=lambda i: (float(boxes[i][1]), float(boxes[i][0])))
    for i in order:
        w, h = sizes[i]
        bx, by = round(float(boxes[i][0])), round(float(boxes[i][1]))
        tries = [(bx, by - h), (bx, by)]
        for step in range(1, 12):
            tries += [(bx, by - h - step * h), (bx, by + step * h)]
        for step in range(1, 6):
            tries += [(bx + step * w // 2, by - h), (bx - step * w // 2, by - h)]
        best = None
        for x, y in tries:
            x = min(max(x, 0), max(width - w, 0))
            y = min(max(y, 0), max(height - h, 0))
            if not any(_overlap((x, y, w, h), r) for r in placed):
                best = (x, y)
                break
        if best is None:  # everything taken: the preferred spot, overlapping
            best = (min(max(bx, 0), max(width - w, 0)), min(max(by - h, 0), max(height - h, 0)))
        placed.append((*best, w, h))
        corners[i] = best
    return corners


def _overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two (x, y, w, h) rectangles share any pixel."""
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def _dim(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """A track colour halfway to grey, for people who are only predicted."""
    return tuple(int(0.5 * c + 0.5 * 160) for c in colour)  # type: ignore[return-value]


class SceneView:
    """A fixed virtual camera looking at the scene in the camera optical frame from above-behind.

    The view is set once (not per frame) so that motion in the video is motion of the people.
    """

    def __init__(
        self, width: int = 640, height: int = 480, depth_range: tuple[float, float] = (0.5, 12.0)
    ) -> None:
        self.width, self.height = width, height
        near, far = depth_range
        centre = np.array([0.0, 0.0, (near + far) / 2])
        # Eye above (negative y is up in optical frames) and behind the real camera.
        eye = np.array([0.0, -0.6 * (far - near), near - 0.35 * (far - near)])
        forward = centre - eye
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, -1.0, 0.0])  # world up = -y
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        self._R = np.stack([right, down, forward])  # rows: view axes in world coordinates
        self._eye = eye
        self._f = 0.9 * width
        self._grid = self._make_grid(near, far)

    def _make_grid(self, near: float, far: float) -> list[tuple[np.ndarray, np.ndarray]]:
        lines = []
        floor_y = 1.6  # metres below the camera: a rough floor for orientation only
        half = far / 2
        for z in np.arange(0.0, far + 1e-6, 1.0):
            lines.append((np.array([-half, floor_y, z]), np.array([half, floor_y, z])))
        for x in np.arange(-np.floor(half), np.floor(half) + 1e-6, 1.0):
            lines.append((np.array([x, floor_y, 0.0]), np.array([x, floor_y, far])))
        return lines

    def project(self, points: np.ndarray) -> np.ndarray:
        cam = (np.asarray(points, dtype=np.float64) - self._eye) @ self._R.T
        with np.errstate(divide="ignore", invalid="ignore"):
            uv = self._f * cam[..., :2] / cam[..., 2:3] + [self.width / 2, self.height / 2]
        uv[cam[..., 2] <= 0.05] = np.nan
        return uv

    def render(self, poses: Sequence[PersonPose]) -> np.ndarray:
        canvas = np.full((self.height, self.width, 3), 30, np.uint8)
        for a, b in self._grid:
            pa, pb = self.project(np.stack([a, b]))
            if np.isfinite(pa).all() and np.isfinite(pb).all():
                cv2.line(canvas, _pt(pa), _pt(pb), (70, 70, 70), 1, cv2.LINE_AA)
        origin = self.project(np.zeros((1, 3)))[0]
        if np.isfinite(origin).all():
            cv2.drawMarker(canvas, _pt(origin), (200, 200, 200), cv2.MARKER_TRIANGLE_UP, 12, 2)
        for pose in sorted(poses, key=lambda p: -np.nan_to_num(p.root[2])):  # far first
            colour = track_colour_bgr(pose.track_id)
            uv = self.project(pose.joints_3d)
            for parent, child in joint_set(pose.joint_set).bones:
                if np.isfinite(uv[parent]).all() and np.isfinite(uv[child]).all():
                    cv2.line(canvas, _pt(uv[parent]), _pt(uv[child]), colour, 2, cv2.LINE_AA)
            head = uv[np.isfinite(uv).all(-1)]
            if len(head):
                top = head[np.argmin(head[:, 1])]
                cv2.putText(
                    canvas,
                    f"{pose.track_id}",
                    _pt(top - [0, 8]),
                    cv2.FONT_HERSHEY_SIMPLEX,
                    0.5,
                    colour,
                    1,
                    cv2.LINE_AA,
                )
        cv2.putText(
            canvas,
            "3D (camera frame, 1 m grid)",
            (10, 20),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (220, 220, 220),
            1,
            cv2.LINE_AA,
        )
        return canvas


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0])), round(float(p[1]))


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Both images at the left one's height, next to each other."""
    h = left.shape[0]
    if right.shape[0] != h:
        w = round(right.shape[1] * h / right.shape[0])
        right = cv2.resize(right, (w, h), interpolation=cv2.INTER_AREA)
    return np.hstack([left, right])
