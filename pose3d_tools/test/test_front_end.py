"""The posture test set's manifest and fetch, OKS, and the front-end benchmark's report."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from pose3d_tools import REPO_ROOT
from pose3d_tools.bench import front_end
from pose3d_tools.bench.posture_set import (
    OUT_DIR,
    fetch,
    images,
    load_manifest,
    rotate_boxes,
    rotate_image,
    rotate_points,
    sha256,
)

# Licences that allow committing and redistributing an image with the project (Apache-2.0).
ALLOWED = {"Apache-2.0", "BSD-3-Clause", "CC0-1.0", "public-domain", "CC-BY-2.0",
           "Pixabay-Content-License", "Unlicense"}  # fmt: skip
REQUIRED = ("sitting", "lying", "crouching", "bending", "close_up", "from_behind", "crowd",
            "low_light", "rotated_90", "rotated_180", "rotated_270")  # fmt: skip
CATEGORIES = {*REQUIRED, "upright"}


def test_manifest_entries_are_complete_and_licences_allowed():
    manifest = load_manifest()
    assert set(manifest["licence_allow_list"]) <= ALLOWED
    items = {it["id"]: it for it in manifest["images"]}
    assert len(items) == len(manifest["images"]), "duplicate ids"
    for it in manifest["images"]:
        assert it["category"] in CATEGORIES, it["id"]
        if "derived_from" in it:
            assert it["derived_from"] in items and "derived_from" not in items[it["derived_from"]]
            assert ("rotate" in it) != ("dark" in it)
            continue
        assert it["licence"] in ALLOWED, it["id"]
        assert isinstance(it["people"], int) and it["people"] >= 1
        assert it["source"]["kind"] in {"github", "debian", "pypi"}
        if it["source"]["kind"] == "github":  # committed: a pinned commit and the right bytes
            assert len(it["source"]["commit"]) == 40
            assert sha256(REPO_ROOT / it["file"]) == it["sha256"], it["id"]
        for person in it.get("keypoints_coco17", []):
            assert np.asarray(person).shape == (17, 3)


def test_set_covers_the_issue_categories():
    counts: dict[str, int] = {}
    for it in load_manifest()["images"]:
        counts[it["category"]] = counts.get(it["category"], 0) + 1
    for category in REQUIRED:
        assert counts.get(category, 0) >= 2, category


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_keypoints_follow_the_image(degrees):
    image = np.zeros((30, 50), np.uint8)
    image[7, 41] = 255  # (x, y) = (41, 7)
    rotated = rotate_image(image, degrees)
    y, x = np.argwhere(rotated == 255)[0]
    np.testing.assert_array_equal(rotate_points(np.array([41.0, 7.0]), degrees, 50, 30), [x, y])


def test_oks_against_a_hand_computed_example():
    gt = np.zeros((12, 3))
    gt[:, 0], gt[:, 1], gt[:, 2] = np.arange(12) * 10.0, 50.0, 2
    pred = gt[:, :2].copy()
    pred[4, 0] += 10.0  # l_wrist 10 px off: exp(-100 / (2 * 10000 * (2 * 0.062)^2)) = 0.722386
    assert front_end.oks(pred, gt, 10000.0) == pytest.approx((11 + 0.722386) / 12, abs=1e-6)
    gt[0, 2] = 0  # an unlabelled joint does not count, however far off
    pred[0] += 1000.0
    assert front_end.oks(pred, gt, 10000.0) == pytest.approx((10 + 0.722386) / 11, abs=1e-6)
    assert front_end.oks(pred + 1e4, gt, 10000.0) == pytest.approx(0.0, abs=1e-12)


def test_match_oks_is_one_to_one():
    gt = np.zeros((2, 17, 3))
    gt[0, :, :2], gt[1, :, :2], gt[..., 2] = 0.0, 500.0, 2
    gt[0, :, 0] = gt[1, :, 0] = np.arange(17) * 5.0
    near_first = gt[0, front_end.COCO17_LIMB_INDEX, :2] + 1.0
    scores = front_end.match_oks([near_first], gt, np.array([2500.0, 2500.0]))
    assert scores[0] > 0.9 and scores[1] == 0.0
    assert front_end.match_oks([], gt, np.array([1.0, 1.0])) == [0.0, 0.0]


def test_limb_points_by_name():
    names = tuple(f"j{i}" for i in range(5)) + front_end.LIMB_JOINTS[::-1]
    points = np.arange(len(names) * 2, dtype=float).reshape(-1, 2)
    out = front_end.limb_points(points, names)
    assert out.shape == (12, 2)
    np.testing.assert_array_equal(out[0], points[names.index("l_shoulder")])


FOOTAGE = REPO_ROOT / "data" / "footage"


@pytest.fixture(scope="module")
def fetched(tmp_path_factory) -> Path:
    """The posture set fetched into a fresh folder (the PyPI download skipped if done before)."""
    if not (FOOTAGE / "vtest.avi").exists():
        pytest.skip("needs make setup's footage (data/footage)")
    out = tmp_path_factory.mktemp("posture_set")
    for name in ("astronaut.png", "camera.png"):
        if (OUT_DIR / name).exists():
            shutil.copyfile(OUT_DIR / name, out / name)
    return fetch(out)


def test_fetch_makes_every_listed_file(fetched):
    listed = images(fetched)
    assert len(listed) == len(load_manifest()["images"])
    for item in listed:
        image = cv2.imread(str(item.path))
        assert image is not None, item.path
        h, w = image.shape[:2]
        if item.keypoints is not None:  # labels inside the (rotated) image
            xy = item.keypoints[..., :2][item.keypoints[..., 2] > 0]
            assert (xy >= 0).all() and (xy[:, 0] < w).all() and (xy[:, 1] < h).all(), item.id
        if item.boxes is not None:  # one box per person, inside the (rotated) image
            assert len(item.boxes) == item.people, item.id
            assert (item.boxes[:, :2] >= 0).all() and (item.boxes[:, 2] <= w).all(), item.id
            assert (item.boxes[:, 3] <= h).all(), item.id


def _models_built() -> bool:
    return (REPO_ROOT / "data" / "models" / "manifest.json").exists()


@pytest.mark.skipif(not _models_built(), reason="needs make setup's models")
def test_report_schema_on_two_images(fetched):
    wanted = {"businessman_standing", "businessman_standing_rot90"}
    items = [it for it in images(fetched) if it.id in wanted]
    with_mp = front_end.MEDIAPIPE_PYTHON.exists()
    report = json.loads(json.dumps(front_end.benchmark(items, threads=1, mediapipe=with_mp)))
    assert set(report["categories"]) == {"upright", "rotated_90"}
    for fe in ["pose3d"] + (["mediapipe"] if with_mp else []):
        total = report["total"][fe]
        assert total["images"] == 2 and total["people_present"] == 2
        assert 0 <= total["people_found"] <= 2 and total["labelled_people"] == 2
        assert total["oks_mean"] is None or 0.0 <= total["oks_mean"] <= 1.0
        assert total["people_found_unverified"] == 0
    assert {"detect", "keypoints", "total"} <= set(report["total"]["pose3d"]["stage_ms_median"])
    for rec in report["images"]:
        assert rec["id"] in wanted and len(rec["pose3d"]["oks"]) == 1
        assert rec["pose3d"]["found_by"] == "boxes"
        assert not math.isnan(rec["pose3d"]["oks"][0])


def test_rotated_boxes_hold_the_rotated_corners():
    boxes = np.array([[10.0, 5.0, 20.0, 25.0]])
    for degrees in (90, 180, 270):
        out = rotate_boxes(boxes, degrees, 50, 30)[0]
        corners = rotate_points(np.array([[10.0, 5.0], [20.0, 25.0]]), degrees, 50, 30)
        np.testing.assert_array_equal(out[:2], corners.min(0))
        np.testing.assert_array_equal(out[2:], corners.max(0))
        assert out[2] - out[0] == (10.0 if degrees == 180 else 20.0)


def test_match_boxes_one_skeleton_per_person():
    boxes = np.array([[0.0, 0.0, 100.0, 200.0], [300.0, 0.0, 400.0, 200.0]])
    inside_first = np.column_stack([np.linspace(10, 90, 12), np.linspace(10, 190, 12)])
    legs_below = inside_first.copy()
    legs_below[6:, 1] += 1000.0  # off the image: ignored (a close-up's guessed legs)
    between = inside_first + np.array([150.0, 0.0])  # in neither box
    assert front_end.match_boxes([inside_first], boxes, 500, 250) == 1
    assert front_end.match_boxes([inside_first, inside_first], boxes, 500, 250) == 1  # a duplicate
    assert (
        front_end.match_boxes([legs_below, inside_first + np.array([300.0, 0.0])], boxes, 500, 250)
        == 2
    )
    assert front_end.match_boxes([between], boxes, 500, 250) == 0
