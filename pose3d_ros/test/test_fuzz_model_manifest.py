"""Fuzzing the 2D model manifest reader (assets.read_manifest / verify_models / list_models, run
on every model load by the node, `pose3d run` and `pose3d-tools models list`).

A manifest.json beside a (small, fake) model file, then cut short, with bytes flipped, or with
values of the wrong JSON type: the model verifies only when the manifest still records the
file's hash under the current recipe, otherwise AssetError names the manifest or the model in
one line; never another exception.
"""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pose3d_ros.assets import (
    MANIFEST,
    MODELS,
    RECIPE_VERSION,
    AssetError,
    list_models,
    read_manifest,
    verify_models,
)

pytestmark = pytest.mark.timeout(120)

NAME = "person_detector"
PAYLOAD = b"not really an onnx model, but hashed like one"
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
GOOD = {
    "format": 1,
    "built_by": "pose3d-tools models build",
    "models": {
        NAME: {"file": MODELS[NAME].file, "sha256": DIGEST, "recipe_version": RECIPE_VERSION}
    },
}
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=8), st.just(DIGEST)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)  # fmt: skip


def _state(text: bytes) -> str:
    """The independent verdict: does this manifest still vouch for the model file ("ok"), name
    it with another hash ("corrupt"), or not record it at all ("not built")?"""
    try:
        doc = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError):
        return "not built"
    if not isinstance(doc, dict) or not isinstance(doc.get("models", {}), dict):
        return "not built"
    entry = doc.get("models", {}).get(NAME)
    if not isinstance(entry, dict) or entry.get("recipe_version") != RECIPE_VERSION:
        return "not built"
    return "ok" if entry.get("sha256") == DIGEST else "corrupt"


@pytest.fixture(scope="module")
def fake_model_dir(tmp_path_factory):
    """One model folder whose manifest every example rewrites."""
    d = tmp_path_factory.mktemp("models")
    (d / MODELS[NAME].file).write_bytes(PAYLOAD)
    return d


def _check(d, text: bytes) -> None:
    (d / MANIFEST).write_bytes(text)
    state = _state(text)
    usable = state == "ok"
    try:
        read_manifest(d)
        verify_models(d, (NAME,))
    except AssetError as e:
        assert not usable, e
        msg = str(e)
        assert "\n" not in msg and (MANIFEST in msg or MODELS[NAME].file in msg), msg
        assert "pose3d-tools models build" in msg
    else:
        assert usable
    rows = {r["name"]: r["state"] for r in list_models(d)}
    assert rows[NAME] == state


@settings(max_examples=150)
@given(
    cut=st.one_of(st.none(), st.integers(0, 10**4)),
    flips=st.lists(st.tuples(st.integers(0, 10**4), st.integers(1, 255)), max_size=4),
)
@example(cut=None, flips=[])
@example(cut=None, flips=[(3, 0x80)])  # not UTF-8
def test_damaged_manifests_verify_only_when_still_intact(fake_model_dir, cut, flips) -> None:
    data = bytearray(json.dumps(GOOD, indent=2).encode())
    for pos, xor in flips:
        data[pos % len(data)] ^= xor
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    _check(fake_model_dir, bytes(data))


@settings(max_examples=150)
@given(
    path=st.sampled_from([(), ("models",), ("models", NAME), ("models", NAME, "sha256"),
                          ("models", NAME, "recipe_version")]),
    value=JSON_VALUES,
)  # fmt: skip
@example(path=(), value=[])
@example(path=("models", NAME, "recipe_version"), value=True)  # True == 1 in Python
def test_values_of_the_wrong_type_are_refused_with_an_asset_error(
    fake_model_dir, path, value
) -> None:
    doc = json.loads(json.dumps(GOOD))
    if not path:
        doc = value
    else:
        target = doc
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    _check(fake_model_dir, json.dumps(doc).encode())


@settings(max_examples=3)
@given(depth=st.integers(10**5, 3 * 10**5))
def test_absurdly_nested_json_is_an_asset_error(fake_model_dir, depth) -> None:
    """Found here: json's recursion limit raised RecursionError out of read_manifest."""
    _check(fake_model_dir, b"[" * depth)
