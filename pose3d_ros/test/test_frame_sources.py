"""Tests for pose3d_ros.core.frame_sources, on tiny media generated in a temp dir
(no ROS, no camera)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from pose3d_ros.core.frame_sources import (
    CameraSource,
    Frame,
    ImageFolderSource,
    StillImageSource,
    VideoFileSource,
    open_source,
)

W, H, N, FPS = 64, 48, 12, 25.0


def level(i: int) -> int:
    return 10 + 20 * i  # distinct brightness per frame, far apart enough to survive MJPG


def brightness(frame: Frame) -> int:
    return round(float(frame.image.mean()))


def nearest_index(frame: Frame) -> int:
    return int(np.argmin([abs(brightness(frame) - level(i)) for i in range(N)]))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), FPS, (W, H))
    assert writer.isOpened()
    for i in range(N):
        writer.write(np.full((H, W, 3), level(i), np.uint8))
    writer.release()
    return path


@pytest.fixture
def folder(tmp_path) -> Path:
    d = tmp_path / "frames"
    d.mkdir()
    # Unpadded numbers: natural order must put frame_2 before frame_10.
    for i in range(N):
        cv2.imwrite(str(d / f"frame_{i}.png"), np.full((H, W, 3), level(i), np.uint8))
    (d / "notes.txt").write_text("ignored")
    (d / "sub.png").mkdir()  # a directory with an image suffix is not an image
    return d


@pytest.fixture
def still(tmp_path) -> Path:
    img = np.zeros((H, W, 3), np.uint8)
    img[:, :, 2] = 200
    path = tmp_path / "still.jpg"
    cv2.imwrite(str(path), img)
    return path


def test_video_order_count_fps_size(video):
    with open_source(str(video)) as src:
        assert isinstance(src, VideoFileSource)
        assert src.fps == pytest.approx(FPS)
        assert src.size == (W, H)
        assert src.frame_count == N
        frames = list(src)
    assert [f.index for f in frames] == list(range(N))
    assert [nearest_index(f) for f in frames] == list(range(N))
    for f in frames:
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
        assert abs(brightness(f) - level(f.index)) <= 3
    assert src.closed and src.read() is None


def test_video_end_returns_none_repeatedly(video):
    src = open_source(video)
    for _ in range(N):
        assert src.read() is not None
    assert src.read() is None
    assert src.read() is None
    src.close()


def test_video_loop_restarts(video):
    with open_source(video, loop=True) as src:
        frames = [src.read() for _ in range(2 * N + 3)]
    assert [f.index for f in frames] == list(range(N)) * 2 + [0, 1, 2]
    assert [f.cycle for f in frames] == [0] * N + [1] * N + [2] * 3
    assert [nearest_index(f) for f in frames] == [f.index for f in frames]


def test_folder_natural_order_and_props(folder):
    with open_source(folder) as src:
        assert isinstance(src, ImageFolderSource)
        assert src.fps is None
        assert src.size == (W, H)
        assert src.frame_count == N
        assert [p.name for p in src.files][:3] == ["frame_0.png", "frame_1.png", "frame_2.png"]
        frames = list(src)
    assert [f.index for f in frames] == list(range(N))
    assert [brightness(f) for f in frames] == [level(i) for i in range(N)]


def test_folder_loop(folder):
    with open_source(str(folder), loop=True) as src:
        frames = [src.read() for _ in range(N + 2)]
    assert [f.index for f in frames] == [*range(N), 0, 1]
    assert brightness(frames[N]) == level(0) and frames[N].cycle == 1


def test_folder_size_mismatch_is_error(folder):
    cv2.imwrite(str(folder / "frame_99.png"), np.zeros((H + 2, W, 3), np.uint8))
    with open_source(folder) as src:
        for _ in range(N):
            src.read()
        with pytest.raises(ValueError, match=r"frame_99\.png.*64x50.*64x48"):
            src.read()


def test_folder_without_images(tmp_path):
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images"):
        open_source(tmp_path)


def test_folder_with_undecodable_image(tmp_path):
    (tmp_path / "0.png").write_text("not a png")
    with pytest.raises(ValueError, match=r"0\.png"):
        open_source(tmp_path)


def test_still_once_and_loop(still):
    with open_source(still) as src:
        assert isinstance(src, StillImageSource)
        assert src.size == (W, H) and src.fps is None and src.frame_count == 1
        first = src.read()
        assert first.index == 0
        assert abs(int(first.image[..., 2].mean()) - 200) <= 3
        assert src.read() is None
    with open_source(still, loop=True) as src:
        frames = [src.read() for _ in range(4)]
    assert [(f.index, f.cycle) for f in frames] == [(0, 0), (0, 1), (0, 2), (0, 3)]
    frames[0].image[:] = 0  # drawing on one frame must not touch the next
    assert frames[1].image.mean() > 0


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(FileNotFoundError, match=r"nope\.mp4"):
        open_source(missing)
    with pytest.raises(FileNotFoundError, match="/dev/video987"):
        open_source("/dev/video987")


def test_non_image_file(tmp_path):
    bogus_png = tmp_path / "bogus.png"
    bogus_png.write_bytes(b"definitely not an image")
    with pytest.raises(ValueError, match=r"bogus\.png"):
        open_source(bogus_png)
    text = tmp_path / "readme.txt"
    text.write_text("hello, I am not a video")
    with pytest.raises(ValueError, match=r"readme\.txt"):
        open_source(text)


def test_empty_spec():
    with pytest.raises(ValueError, match="empty"):
        open_source("  ")


def test_camera_spec_dispatch(monkeypatch):
    # No camera in CI: check that digits and ints are routed to CameraSource, nothing more.
    opened = []

    def fake_init(self, device, **kwargs):
        opened.append(device)
        raise ValueError(f"cannot open camera {device!r}")

    monkeypatch.setattr(CameraSource, "__init__", fake_init)
    for spec in ("0", 2, " 3 "):
        with pytest.raises(ValueError, match="camera"):
            open_source(spec)
    assert opened == [0, 2, 3]


def test_unavailable_camera_index_is_value_error():
    with pytest.raises(ValueError, match="camera 99"):
        CameraSource(99)
