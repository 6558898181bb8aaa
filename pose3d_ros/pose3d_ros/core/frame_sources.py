"""Where the video source node gets its frames: a video file, an image folder, a still, a camera.

Kept free of ROS so the same sources serve ``pose3d run`` and the tests. Every source yields
HxWx3 uint8 BGR frames of one fixed size; a consumer (timestamps, camera intrinsics, the 2D
detector's letterboxing) may rely on that size not changing mid-stream.

Image folders whose files differ in size are refused rather than resized: a silent resize
would make the published frames disagree with any camera calibration and distort keypoints,
and mixed sizes in one folder are almost always a mistake worth hearing about.

Sources are not thread-safe; one reader at a time.
"""

from __future__ import annotations

import os
import re
import stat
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import cv2
import numpy as np

IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".bmp",
        ".dib",
        ".tif",
        ".tiff",
        ".webp",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)
"""Files an image folder is made of; anything else in the folder is ignored."""

_S = TypeVar("_S", bound="FrameSource")


@dataclass(frozen=True)
class Frame:
    """One BGR frame.

    ``index`` is the frame's position in the source (0-based) and starts again at 0 when a
    looping source restarts; ``cycle`` counts those restarts, so (cycle, index) is unique.
    """

    image: np.ndarray
    index: int
    cycle: int = 0


class FrameSource(ABC):
    """A stream of equally sized BGR frames; ``read()`` returns None once it is exhausted."""

    def __init__(self, description: str, loop: bool) -> None:
        self.description = description
        self.loop = loop
        self._index = 0
        self._cycle = 0
        self._closed = False

    @property
    @abstractmethod
    def fps(self) -> float | None:
        """The natural frame rate, or None when the source has none (folders, stills)."""

    @property
    @abstractmethod
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels, as OpenCV orders them."""

    @property
    def frame_count(self) -> int | None:
        """Frames per pass if known (container metadata may be approximate), else None."""
        return None

    @abstractmethod
    def _next_image(self) -> np.ndarray | None:
        """The next image of the current pass, or None at its end."""

    @abstractmethod
    def _rewind(self) -> bool:
        """Go back to the first frame; False if that is impossible."""

    def _release(self) -> None:  # noqa: B027 - optional hook, most sources hold nothing
        """Free OS resources (capture handles)."""

    def read(self) -> Frame | None:
        """Next frame; None at the end (never, while looping a non-empty source) or once closed."""
        if self._closed:
            return None
        image = self._next_image()
        if image is None and self.loop and self._index > 0 and self._rewind():
            self._index = 0
            self._cycle += 1
            image = self._next_image()
        if image is None:
            return None
        frame = Frame(image, self._index, self._cycle)
        self._index += 1
        return frame

    def close(self) -> None:
        """Release the underlying capture; idempotent, and later reads return None."""
        if not self._closed:
            self._closed = True
            self._release()

    @property
    def closed(self) -> bool:
        return self._closed

    def __iter__(self) -> Iterator[Frame]:
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.description!r}, loop={self.loop})"


def _positive_or_none(value: float) -> float | None:
    # OpenCV reports 0 (or NaN) when a container or driver does not know its rate.
    return float(value) if value and np.isfinite(value) and value > 0 else None


def _imread_bgr(path: Path) -> np.ndarray:
    # imread returns None instead of raising; IMREAD_COLOR turns grey/alpha/16-bit into BGR8.
    # Reading via imdecode keeps non-ASCII paths working on every platform.
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise ValueError(f"cannot read image file {str(path)!r}: {exc}") from exc
    image = cv2.imdecode(raw, cv2.IMREAD_COLOR) if raw.size else None
    if image is None:
        raise ValueError(f"cannot decode image file {str(path)!r} (not an image, or corrupt)")
    return image


class _CaptureSource(FrameSource):
    """Shared logic for anything cv2.VideoCapture reads (files, URLs, cameras)."""

    def __init__(self, target: str | int, description: str, loop: bool, api: int) -> None:
        super().__init__(description, loop)
        self._target = target
        self._api = api
        self._cap = self._open()
        # Decode the first frame now: it proves the input really is video and gives the size
        # even where the backend does not report it.
        ok, first = self._cap.read()
        if not ok or first is None:
            self._cap.release()
            raise ValueError(f"cannot read any frame from {description}")
        self._pending: np.ndarray | None = first
        self._size = (int(first.shape[1]), int(first.shape[0]))
        self._fps = _positive_or_none(self._cap.get(cv2.CAP_PROP_FPS))

    def _open(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(self._target, self._api)
        if not cap.isOpened():
            cap.release()
            raise ValueError(f"cannot open {self.description}")
        return cap

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    def _next_image(self) -> np.ndarray | None:
        if self._pending is not None:
            image, self._pending = self._pending, None
            return image
        ok, image = self._cap.read()
        return image if ok and image is not None else None

    def _rewind(self) -> bool:
        # Reopening is slower than seeking but exact for every codec; seeking to frame 0 on
        # long-GOP streams can land on a later keyframe.
        self._cap.release()
        try:
            self._cap = self._open()
        except ValueError:
            return False
        return True

    def _release(self) -> None:
        self._cap.release()


class VideoFileSource(_CaptureSource):
    """A video file or stream URL, read in order at whatever speed the caller asks."""

    def __init__(self, path: str | os.PathLike[str], loop: bool = False) -> None:
        self.path = str(path)
        super().__init__(self.path, f"video {self.path!r}", loop, cv2.CAP_ANY)
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self._count = count if count > 0 else None

    @property
    def frame_count(self) -> int | None:
        return self._count


class CameraSource(_CaptureSource):
    """A V4L2 camera by index or device path; ``read()`` returns None if the device goes away.

    ``width``/``height``/``fps`` are requests to the driver, which may pick the nearest mode it
    supports; ``size`` and ``fps`` report what it actually delivers.
    """

    def __init__(
        self,
        device: int | str,
        *,
        width: int | None = None,
        height: int | None = None,
        fps: float | None = None,
    ) -> None:
        self.device = device
        self._request = {
            cv2.CAP_PROP_FRAME_WIDTH: width,
            cv2.CAP_PROP_FRAME_HEIGHT: height,
            cv2.CAP_PROP_FPS: fps,
        }
        api = cv2.CAP_V4L2 if os.name == "posix" and hasattr(cv2, "CAP_V4L2") else cv2.CAP_ANY
        super().__init__(device, f"camera {device!r}", False, api)

    def _open(self) -> cv2.VideoCapture:
        cap = super()._open()
        for prop, value in self._request.items():
            if value is not None:
                cap.set(prop, float(value))
        return cap


class ImageFolderSource(FrameSource):
    """Every image file in a folder, in natural name order (frame2 before frame10)."""

    def __init__(self, path: str | os.PathLike[str], loop: bool = False) -> None:
        self.path = Path(path)
        super().__init__(f"image folder {str(self.path)!r}", loop)
        files = [
            p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
        ]
        if not files:
            raise ValueError(
                f"image folder {str(self.path)!r} holds no images "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        self.files: list[Path] = sorted(files, key=_natural_key)
        first = _imread_bgr(self.files[0])
        self._size = (int(first.shape[1]), int(first.shape[0]))
        self._pending: np.ndarray | None = first
        self._pos = 1

    @property
    def fps(self) -> float | None:
        return None

    @property
    def size(self) -> tuple[int, int]:
        return self._size

    @property
    def frame_count(self) -> int | None:
        return len(self.files)

    def _next_image(self) -> np.ndarray | None:
        if self._pending is not None:
            image, self._pending = self._pending, None
            return image
        if self._pos >= len(self.files):
            return None
        path = self.files[self._pos]
        self._pos += 1
        image = _imread_bgr(path)
        size = (int(image.shape[1]), int(image.shape[0]))
        if size != self._size:
            raise ValueError(
                f"image {str(path)!r} is {size[0]}x{size[1]} but the folder started at "
                f"{self._size[0]}x{self._size[1]} ({str(self.files[0])!r}); "
                "all images of a folder source must have the same size"
            )
        return image

    def _rewind(self) -> bool:
        self._pos = 0
        return True


class StillImageSource(FrameSource):
    """One image: a single frame, or the same frame forever when looping (for testing nodes)."""

    def __init__(self, path: str | os.PathLike[str], loop: bool = False) -> None:
        self.path = Path(path)
        super().__init__(f"image {str(self.path)!r}", loop)
        self._image = _imread_bgr(self.path)
        self._done = False

    @property
    def fps(self) -> float | None:
        return None

    @property
    def size(self) -> tuple[int, int]:
        return (int(self._image.shape[1]), int(self._image.shape[0]))

    @property
    def frame_count(self) -> int | None:
        return 1

    def _next_image(self) -> np.ndarray | None:
        if self._done:
            return None
        self._done = True
        # A copy, so a consumer drawing on one frame does not alter all later ones.
        return self._image.copy()

    def _rewind(self) -> bool:
        self._done = False
        return True


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part.lower())
        for part in re.split(r"(\d+)", path.name)
        if part
    )


_DEV_VIDEO = re.compile(r"^/dev/video\d+$")


def open_source(spec: str | int | os.PathLike[str], loop: bool = False) -> FrameSource:
    """Open whatever ``spec`` names, so one string parameter can configure the source node.

    - an integer or all-digit string: V4L2 camera index ("0");
    - /dev/videoN or any character device: V4L2 camera by path;
    - a directory: image folder;
    - a file with an image extension (jpg, png, bmp, ...): still image;
    - any other file, or a URL (rtsp://, http://, ...): video via cv2.VideoCapture.

    ``loop`` restarts files, folders and stills from the first frame; cameras ignore it.
    Raises FileNotFoundError for a path that does not exist and ValueError (naming the input)
    for one that exists but cannot be read.
    """
    if isinstance(spec, int):
        return CameraSource(spec)
    text = os.fspath(spec).strip()
    if not text:
        raise ValueError("empty frame source specification")
    if text.isdigit():
        return CameraSource(int(text))
    if "://" in text:
        return VideoFileSource(text, loop)
    path = Path(text).expanduser()
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        if _DEV_VIDEO.match(text):
            raise FileNotFoundError(f"camera device {text!r} does not exist") from None
        raise FileNotFoundError(f"frame source {text!r} does not exist") from None
    if stat.S_ISCHR(mode):
        return CameraSource(str(path))
    if stat.S_ISDIR(mode):
        return ImageFolderSource(path, loop)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return StillImageSource(path, loop)
    return VideoFileSource(path, loop)
