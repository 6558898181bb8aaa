"""TensorRT engine cache keys, sidecars and the rebuild decision (no TensorRT, no GPU)."""

from __future__ import annotations

import json
import logging

import pytest

from pose3d_ros.backends.tensorrt.cache import (
    DeviceKey,
    EngineKey,
    cache_dir,
    cache_paths,
    check_engine,
    device_mismatch,
    normalise_profile,
    obtain_engine,
    read_sidecar,
    sidecar_path,
    write_engine,
)

PROFILE = {"keypoints": ((1, 27, 17, 3), (4, 27, 17, 3), (8, 27, 17, 3))}


@pytest.fixture
def onnx_file(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_bytes(b"onnx model bytes v1")
    return p


def make_key(onnx_file, **overrides) -> EngineKey:
    args = dict(
        trt_version="10.3.0",
        gpu_name="Orin (16 SMs)",
        compute_capability="8.7",
        precision="fp16",
        profile=PROFILE,
    )
    args.update(overrides)
    return EngineKey.create(onnx_file, **args)


def test_key_is_deterministic_and_round_trips(onnx_file):
    a, b = make_key(onnx_file), make_key(onnx_file)
    assert a == b and a.digest() == b.digest()
    assert EngineKey.from_dict(json.loads(json.dumps(a.to_dict()))) == a


@pytest.mark.parametrize(
    "change",
    [
        {"trt_version": "8.6.2"},
        {"gpu_name": "Orin (8 SMs)"},
        {"compute_capability": "8.6"},
        {"precision": "fp32"},
        {"profile": {"keypoints": ((1, 27, 17, 3), (4, 27, 17, 3), (16, 27, 17, 3))}},
        {"profile": {"keypoints": ((1, 27, 17, 3), (2, 27, 17, 3), (8, 27, 17, 3))}},
        {"builder": {"workspace_mb": 2048}},
    ],
)
def test_key_changes_with_each_field(onnx_file, change):
    assert make_key(onnx_file, **change).digest() != make_key(onnx_file).digest()


def test_key_changes_with_onnx_bytes(onnx_file):
    before = make_key(onnx_file)
    onnx_file.write_bytes(b"onnx model bytes v2")
    after = make_key(onnx_file)
    assert before.onnx_sha256 != after.onnx_sha256 and before.digest() != after.digest()


def test_calibration_hash_only_counts_for_int8(onnx_file):
    fp16 = [make_key(onnx_file, calibration_sha256=c).digest() for c in ("a", "b")]
    int8 = [make_key(onnx_file, precision="int8", calibration_sha256=c).digest() for c in "ab"]
    assert fp16[0] == fp16[1]
    assert int8[0] != int8[1]


def test_bad_keys_rejected(onnx_file):
    with pytest.raises(ValueError, match="precision"):
        make_key(onnx_file, precision="fp8")
    with pytest.raises(ValueError, match="min <= opt <= max"):
        normalise_profile({"x": ((4, 3), (2, 3), (8, 3))})
    with pytest.raises(ValueError, match=r"\(min, opt, max\)"):
        normalise_profile({"x": ((1, 3), (8, 3))})


def test_cache_paths_name_precision_batch_and_digest(tmp_path, onnx_file):
    key = make_key(onnx_file)
    engine, side = cache_paths(tmp_path / "cache", onnx_file, key)
    assert engine.name == f"model.fp16.b8.{key.digest()[:16]}.engine"
    assert side == sidecar_path(engine) and side.name.endswith(".engine.json")


def test_written_engine_is_usable_and_sidecar_has_metadata(tmp_path, onnx_file):
    key = make_key(onnx_file)
    engine, _ = cache_paths(tmp_path, onnx_file, key)
    write_engine(engine, b"\x01engine-bytes" * 10, key, {"model": "htnet", "frames": "1"})
    decision = check_engine(engine, key)
    assert decision.usable, decision.reason
    side = read_sidecar(engine)
    assert side["metadata"] == {"model": "htnet", "frames": "1"}
    assert side["engine_size"] == len(b"\x01engine-bytes" * 10)


def test_missing_engine_or_sidecar_is_not_usable(tmp_path, onnx_file):
    key = make_key(onnx_file)
    engine = tmp_path / "m.engine"
    assert not check_engine(engine, key).usable
    engine.write_bytes(b"plan")
    d = check_engine(engine, key)
    assert not d.usable and "no sidecar" in d.reason


def test_stale_sidecar_names_what_differs(tmp_path, onnx_file):
    old = make_key(onnx_file, trt_version="8.6.2", gpu_name="Xavier (8 SMs)")
    engine = write_engine(tmp_path / "m.engine", b"plan-bytes", old)
    d = check_engine(engine, make_key(onnx_file))
    assert not d.usable
    assert "stale" in d.reason and "tensorrt_version" in d.reason and "gpu_name" in d.reason
    assert "8.6.2" in d.reason and "10.3.0" in d.reason


@pytest.mark.parametrize(
    "damage", ["truncate", "garbage_same_size", "garbage_sidecar", "sidecar_without_key"]
)
def test_corrupt_engine_or_sidecar_is_not_usable(tmp_path, onnx_file, damage):
    key = make_key(onnx_file)
    engine = write_engine(tmp_path / "m.engine", b"A" * 1000, key)
    if damage == "truncate":
        engine.write_bytes(b"A" * 500)
    elif damage == "garbage_same_size":
        engine.write_bytes(b"B" * 1000)
    elif damage == "garbage_sidecar":
        sidecar_path(engine).write_text("{not json")
    else:
        sidecar_path(engine).write_text(json.dumps({"engine_size": 1000}))
    d = check_engine(engine, key)
    assert not d.usable
    assert str(engine.name) in d.reason or str(sidecar_path(engine).name) in d.reason


def test_device_mismatch_messages(onnx_file):
    stored = make_key(onnx_file, trt_version="8.6.2")
    assert device_mismatch(stored, DeviceKey("8.6.2", "Orin (16 SMs)", "8.7")) == []
    problems = device_mismatch(stored, DeviceKey("10.3.0", "RTX 4090 (128 SMs)", "8.9"))
    assert len(problems) == 3
    assert any("tensorrt version '8.6.2', this is '10.3.0'" in p for p in problems)
    assert any("'Orin (16 SMs)', this is 'RTX 4090 (128 SMs)'" in p for p in problems)


def test_cache_dir_is_the_asset_locators_engine_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("POSE3D_ENGINE_DIR", str(tmp_path / "from_env"))
    assert cache_dir() == tmp_path / "from_env"
    assert cache_dir("") == tmp_path / "from_env"  # the node's empty engine_dir
    assert cache_dir(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.delenv("POSE3D_ENGINE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "pose3d_ros" / "engines"


class FakeTRT:
    """build() returns a plan; deserialize() accepts only plans this 'TensorRT' made."""

    def __init__(self) -> None:
        self.builds = 0

    def build(self) -> bytes:
        self.builds += 1
        return b"PLAN:" + str(self.builds).encode() * 64

    @staticmethod
    def deserialize(data: bytes):
        if not data.startswith(b"PLAN:"):
            raise RuntimeError("Serialization assertion magicTagRead == kMAGIC_TAG failed")
        return {"engine": data}


def obtain(engine, key, fake, **kw):
    return obtain_engine(engine, key, build=fake.build, deserialize=fake.deserialize, **kw)


def test_obtain_builds_once_then_reuses(tmp_path, onnx_file):
    key, fake = make_key(onnx_file), FakeTRT()
    engine, _ = cache_paths(tmp_path, onnx_file, key)
    first = obtain(engine, key, fake, metadata={"model": "htnet"})
    assert first.built and fake.builds == 1
    second = obtain(engine, key, fake)
    assert not second.built and fake.builds == 1
    assert second.engine == first.engine
    assert second.sidecar["metadata"] == {"model": "htnet"}
    assert obtain(engine, key, fake, force=True).built and fake.builds == 2


def test_obtain_rebuilds_truncated_engine(tmp_path, onnx_file, caplog):
    key, fake = make_key(onnx_file), FakeTRT()
    engine, _ = cache_paths(tmp_path, onnx_file, key)
    obtain(engine, key, fake)
    engine.write_bytes(engine.read_bytes()[:10])
    with caplog.at_level(logging.WARNING):
        result = obtain(engine, key, fake)
    assert result.built and fake.builds == 2
    assert "corrupt engine" in result.reason and "rebuilding" in caplog.text
    assert check_engine(engine, key).usable


def test_obtain_rebuilds_engine_that_fails_to_deserialise(tmp_path, onnx_file, caplog):
    """Hash matches the sidecar (e.g. another TensorRT build wrote it), but it does not load."""
    key, fake = make_key(onnx_file), FakeTRT()
    engine, _ = cache_paths(tmp_path, onnx_file, key)
    write_engine(engine, b"garbage that is not a plan", key)
    with caplog.at_level(logging.WARNING):
        result = obtain(engine, key, fake)
    assert result.built and "failed to deserialise" in result.reason
    assert "magicTagRead" in result.reason
    assert engine.read_bytes().startswith(b"PLAN:")


def test_obtain_rebuilds_stale_engine(tmp_path, onnx_file):
    fake = FakeTRT()
    old, new = make_key(onnx_file, trt_version="8.6.2"), make_key(onnx_file)
    engine = tmp_path / "fixed-name.engine"  # same path, different key (e.g. a user's path)
    obtain(engine, old, fake)
    result = obtain(engine, new, fake)
    assert result.built and "stale" in result.reason and fake.builds == 2
    assert EngineKey.from_dict(read_sidecar(engine)["key"]) == new


def test_obtain_without_build_permission_fails_with_reason(tmp_path, onnx_file):
    key, fake = make_key(onnx_file), FakeTRT()
    with pytest.raises(FileNotFoundError, match=r"no engine file.*pose3d engine build"):
        obtain(tmp_path / "x.engine", key, fake, allow_build=False)
    assert fake.builds == 0


def test_obtain_fails_when_fresh_build_does_not_load(tmp_path, onnx_file):
    key = make_key(onnx_file)
    engine = tmp_path / "x.engine"
    with pytest.raises(RuntimeError, match="does not deserialise"):
        obtain_engine(engine, key, build=lambda: b"bad", deserialize=lambda data: None)
    assert not engine.exists() and not sidecar_path(engine).exists()
