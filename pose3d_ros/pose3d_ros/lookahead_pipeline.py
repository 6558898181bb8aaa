"""Recorded video through a centred lifter: each frame's poses once the frames after it are in.

A centred lifter (latency L = (T - 1) / 2 frames, e.g. hot_mixste_t27_centred: L = 13) describes
the middle of its window, so the pose of frame t needs the 2D of frames t + 1 .. t + L. A live
node cannot wait for the future (it refuses such a lifter); `pose3d run` on a recording can.
This is a delay line over PosePipeline's two halves:

* every frame is observed at once (detection, 2D keypoints, tracking, each person's 2D into
  their track's window: PosePipeline.observe), in input order;
* a frame is finished (lifting, placement, re-attachment: PosePipeline.finish) once each of its
  people's centred windows is complete, i.e. L more slots of that track have arrived, or the
  track's run ended (the track ended or its window restarted after a gap); at the latest when it
  is ``delay_frames`` frames old, and at the end of the input (:meth:`flush`). A window cut
  short is padded at its end with the track's last slot, as its start is with its first
  (stages/track_windows.py);
* frames leave in input order, each with the poses of its own image, 2D, ids and stamp.

Memory is bounded for any length of recording: at most ``delay_frames`` observed frames wait
(their images included), and each track still holds T slots plus at most ``delay_frames``
waiting windows. Re-attachment (stages/reattach.py) decides in the finished frame's order, so
when it gives a new track a lost person's id the lost person's coasting track is handed back to
the tracker up to ``delay_frames`` frames late.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np

from pose3d_ros.core.camera import CameraModel
from pose3d_ros.pipeline import FrameResult, ObservedFrame, PosePipeline
from pose3d_ros.stages.depth_fusion import DepthImage


def delay_frames_for(lookahead: int, frame_period_s: float, slot_period_s: float) -> int:
    """Frames to wait for ``lookahead`` window slots: one slot per frame, unless frames come
    faster than the slots' grid (a 60 Hz video on a 30 Hz grid fills a slot every 2 frames).
    ``slot_period_s`` 0 means the grid follows the frames."""
    if lookahead <= 0:
        return 0
    if slot_period_s <= 0 or frame_period_s <= 0 or frame_period_s >= slot_period_s:
        return lookahead
    return math.ceil(lookahead * slot_period_s / frame_period_s - 1e-9)


class LookaheadPipeline:
    """Drives a PosePipeline built with a centred lifter (``allow_lookahead=True``)."""

    def __init__(self, pipeline: PosePipeline, delay_frames: int | None = None) -> None:
        """``delay_frames``: most frames held back (default: the lifter's latency)."""
        lookahead = pipeline.windows.lookahead
        self.pipeline = pipeline
        self.delay_frames = lookahead if delay_frames is None else int(delay_frames)
        if self.delay_frames < lookahead:
            raise ValueError(
                f"delay_frames {self.delay_frames} is shorter than the lifter's look-ahead "
                f"({lookahead} frames)"
            )
        self._waiting: deque[tuple[Any, ObservedFrame]] = deque()

    @property
    def waiting(self) -> int:
        """Frames observed but not finished yet (never more than ``delay_frames``)."""
        return len(self._waiting)

    def push(
        self,
        image: np.ndarray,
        camera: CameraModel,
        stamp: float,
        depth: DepthImage | None = None,
        tag: Any = None,
    ) -> list[tuple[Any, FrameResult]]:
        """Observe one frame (arguments as PosePipeline.process); returns the frames finished
        now, oldest first, each with the ``tag`` it was pushed with."""
        self._waiting.append((tag, self.pipeline.observe(image, camera, stamp, depth)))
        done = []
        while self._waiting and (
            len(self._waiting) > self.delay_frames
            or all(w.ready for w in self._waiting[0][1].windows)
        ):
            done.append(self._finish_oldest())
        return done

    def flush(self) -> list[tuple[Any, FrameResult]]:
        """End of input: finish every waiting frame (windows padded with what there is)."""
        return [self._finish_oldest() for _ in range(len(self._waiting))]

    def _finish_oldest(self) -> tuple[Any, FrameResult]:
        tag, frame = self._waiting.popleft()
        return tag, self.pipeline.finish(frame)
