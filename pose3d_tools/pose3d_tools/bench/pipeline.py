"""Benchmark the whole pipeline (PosePipeline.process) per stage and end to end at 640x480.

    .venv/bin/python benchmarks/pipeline.py [--rounds 3] [--frames 20] [--warmup 10] [--quick]

Scenes (all 640x480 BGR, fed frame by frame with stamps 1/30 s apart, no decoding in the timing):

* ``1p``: messi5.jpg (1 player) scaled to 480 px high and centre-cropped to 640 wide, the same
  still image every frame (the tracked crops then converge on the player);
* ``multi``: consecutive vtest.avi frames from frame 100, resized 768x576 -> 640x480 (a walking
  crowd; the number of people the pipeline reports per frame is printed);
* ``tiled_N``: N copies of the left player of basketball1.png (detector box, padded) over the
  room's wall, in a 3x2 grid (cells 213x240, so every copy has the same size whatever N): cost vs
  number of people. The detector's score threshold is 0.25 there (the pasted copies score
  0.37-0.78), so that N copies give N people.

Configurations: keypoint model (blazepose_full, and blazepose_lite when built) x ``detect_every``
1 vs 5 x ONNX Runtime threads 1 vs 2, plus the shipped defaults (``threads=0``: ONNX Runtime's
own choice). On ``1p`` also the configurations with threads != 1 again with ONNX Runtime's
intra-op thread spinning ON (``/spin``, the backend's `spin` setting; off by default because idle
worker threads that busy-wait after each run cost far more than they save on a shared CPU).
Every configuration has its own PosePipeline; after a warm-up, rounds of
``--frames`` frames visit the configurations of a scene in turn (interleaved), so a change of
machine load hits all of them alike, and each configuration's ratio to the defaults is taken
per round and the median reported. The machine's load average is recorded per round.

Writes out/bench/pipeline.json and prints a table (``crop`` = person crops through BlazePose per
frame: with detect_every > 1 every track, coasting ones too, gets a crop). FPS = 1000 / mean
end-to-end ms of process() on one thread of control (what `pose3d run` and the node's callback do).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from pose3d_ros.assets import find_model_dir, verify_models
from pose3d_ros.core.camera import CameraModel
from pose3d_ros.core.parameters import flat_values
from pose3d_ros.pipeline import PipelineSettings, PosePipeline
from pose3d_tools import FOOTAGE_DIR as FOOTAGE
from pose3d_tools import REPO_ROOT as ROOT
from pose3d_tools.bench.machine import machine_facts

WIDTH, HEIGHT = 640, 480
FPS_GOAL, P95_GOAL_MS = 20.0, 80.0
STAGES = ("detect", "crops", "keypoints", "tracking", "lifting", "placement", "total")

# The pasted copies score 0.37-0.78 with the SSDLite detector (the default threshold, 0.4, would
# drop some): the tiled scenes use 0.25 so that N copies are N people. It does not change the
# cost per person, only how many there are.
TILED_SCORE_THRESHOLD = 0.25


@dataclass(frozen=True)
class Config:
    model: str  # blazepose_full / blazepose_lite
    detect_every: int
    threads: int  # 0 = ONNX Runtime's default
    spin: bool = False  # ONNX Runtime's intra-op threads busy-wait between runs

    @property
    def name(self) -> str:
        name = f"{self.model.split('_')[1]}/de{self.detect_every}/t{self.threads}"
        return name + "/spin" if self.spin else name

    @classmethod
    def parse(cls, text: str) -> Config:
        model, de, th, *rest = text.split(":")
        return cls(f"blazepose_{model}", int(de), int(th), rest == ["spin"])


DEFAULT = Config(
    PipelineSettings().keypoint_model, PipelineSettings().detect_every, PipelineSettings().threads
)


# ------------------------------------------------------------------ scenes


def fit_640x480(image: np.ndarray) -> np.ndarray:
    """Scale to cover 640x480, then centre-crop."""
    h, w = image.shape[:2]
    s = max(WIDTH / w, HEIGHT / h)
    big = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    y0, x0 = (big.shape[0] - HEIGHT) // 2, (big.shape[1] - WIDTH) // 2
    return np.ascontiguousarray(big[y0 : y0 + HEIGHT, x0 : x0 + WIDTH])


def vtest_frames(start: int, count: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(FOOTAGE / "vtest.avi"))
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(frame, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA))
    cap.release()
    if len(frames) < count:
        raise SystemExit(f"vtest.avi gave {len(frames)} frames from {start}, wanted {count}")
    return frames


def person_cutout(pipeline: PosePipeline) -> np.ndarray:
    """The left player of basketball1.png (upright, whole body), cut at the detector's box padded
    by 10 % (messi5's player is a wide, low pose that fills a grid cell badly)."""
    image = cv2.imread(str(FOOTAGE / "basketball1.png"))
    boxes, _ = pipeline.detector.detect(image)
    if not len(boxes):
        raise SystemExit("the detector found nobody in basketball1.png")
    x0, y0, x1, y1 = boxes[np.argmin(boxes[:, 0])]
    pw, ph = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
    h, w = image.shape[:2]
    x0, y0 = int(max(0, x0 - pw)), int(max(0, y0 - ph))
    x1, y1 = int(min(w, x1 + pw)), int(min(h, y1 + ph))
    return image[y0:y1, x0:x1]


def wall_background() -> np.ndarray:
    """The plain wall and door of basketball1.png (x 200..430) stretched to 640x480."""
    image = cv2.imread(str(FOOTAGE / "basketball1.png"))
    return cv2.resize(image[0:480, 200:430], (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)


def tiled(
    cutout: np.ndarray,
    n: int,
    background: np.ndarray,
    cols: int = 3,
    rows: int = 2,
    fill: float = 0.9,
) -> np.ndarray:
    """n copies of ``cutout`` in the first n cells of a cols x rows grid over ``background``,
    each scaled to ``fill`` of its cell."""
    if n > cols * rows:
        raise ValueError(f"at most {cols * rows} people in a {cols}x{rows} grid")
    canvas = background.copy()
    cw, ch = WIDTH // cols, HEIGHT // rows
    h, w = cutout.shape[:2]
    s = fill * min(cw / w, ch / h)
    small = cv2.resize(
        cutout, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA
    )
    sh, sw = small.shape[:2]
    for k in range(n):
        r, c = divmod(k, cols)
        y, x = r * ch + (ch - sh) // 2, c * cw + (cw - sw) // 2
        canvas[y : y + sh, x : x + sw] = small
    return canvas


# ------------------------------------------------------------------ measuring


def _pipeline(settings: PipelineSettings, spin: bool) -> PosePipeline:
    """A pipeline; with ``spin`` its ONNX Runtime sessions let idle threads busy-wait."""
    if not spin:
        return PosePipeline(settings)
    import pose3d_ros.pipeline as pipeline_module

    original = pipeline_module.load_backend
    pipeline_module.load_backend = functools.partial(original, spin=True)
    try:
        return PosePipeline(settings)
    finally:
        pipeline_module.load_backend = original


class Runner:
    """One configuration on one scene: its own pipeline, its own clock, its samples by round."""

    def __init__(
        self,
        config: Config,
        frames: list[np.ndarray],
        model_dir: str,
        score_threshold: float | None = None,
    ) -> None:
        self.config = config
        settings = replace(
            PipelineSettings(),
            keypoint_model=config.model,
            detect_every=config.detect_every,
            threads=config.threads,
            model_dir=model_dir,
            backend="onnxruntime",
        )
        if score_threshold is not None:
            detector = replace(settings.detector, score_threshold=score_threshold)
            settings = replace(settings, detector=detector)
        self.pipeline = _pipeline(settings, config.spin)
        self.crops: list[int] = []  # person crops through the keypoint model, per frame
        estimate = self.pipeline.keypoints.estimate

        def counting(image, boxes, angles=None):
            self.crops.append(len(boxes))
            return estimate(image, boxes, angles)

        self.pipeline.keypoints.estimate = counting
        self.camera = CameraModel.from_fov(WIDTH, HEIGHT, 60.0)
        self.frames = frames
        self.next = 0
        self.rounds: list[list[dict[str, float]]] = []
        self.people: list[int] = []
        self.warnings: list[str] = []

    def step(self) -> dict[str, float]:
        image = self.frames[self.next % len(self.frames)]
        result = self.pipeline.process(image, self.camera, self.next / 30.0)
        self.next += 1
        self.warnings.extend(result.warnings)
        self.people.append(sum(1 for p in result.poses if p.observed.any()))
        return result.timings_ms

    def warm_up(self, frames: int) -> None:
        for _ in range(frames):
            self.step()
        self.people.clear()
        self.crops.clear()

    def run_round(self, frames: int) -> None:
        self.rounds.append([self.step() for _ in range(frames)])


def stage_stats(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    n = len(samples)
    for stage in STAGES:
        v = np.array([s[stage] for s in samples if stage in s])
        if not len(v):
            continue
        out[stage] = {
            "p50_ms": round(float(np.percentile(v, 50)), 2),
            "p95_ms": round(float(np.percentile(v, 95)), 2),
            "mean_ms": round(float(v.mean()), 2),
            "frames": len(v),
            # what this stage costs per frame on average (detect runs 1 in detect_every frames)
            "per_frame_ms": round(float(v.sum() / n), 2),
        }
    return out


def summarise(runner: Runner, baseline: Runner | None) -> dict:
    samples = [s for r in runner.rounds for s in r]
    stats = stage_stats(samples)
    total = stats["total"]
    fps = 1000.0 / total["mean_ms"]
    row = {
        "config": runner.config.name,
        **asdict(runner.config),
        "frames": len(samples),
        "people_mean": round(float(np.mean(runner.people)), 2),
        "crops_mean": round(float(np.mean(runner.crops)), 2),
        "fps": round(fps, 1),
        "stages": stats,
        "per_round_mean_total_ms": [
            round(float(np.mean([s["total"] for s in r])), 1) for r in runner.rounds
        ],
        "goal_met": bool(fps >= FPS_GOAL and total["p95_ms"] <= P95_GOAL_MS),
        "warnings": sorted(set(runner.warnings))[:5],
    }
    if baseline is not None:
        ratios = [
            np.mean([s["total"] for s in a]) / np.mean([s["total"] for s in b])
            for a, b in zip(runner.rounds, baseline.rounds, strict=True)
        ]
        row["time_vs_defaults"] = {
            "median": round(float(np.median(ratios)), 3),
            "per_round": [round(float(r), 3) for r in ratios],
        }
    return row


def run_scene(
    name: str,
    frames: list[np.ndarray],
    configs: list[Config],
    args: argparse.Namespace,
    loads: list,
    score_threshold: float | None = None,
) -> list[dict]:
    print(f"\n[{name}] loading {len(configs)} pipelines ...", flush=True)
    runners = [Runner(c, frames, args.model_dir, score_threshold) for c in configs]
    for r in runners:
        r.warm_up(args.warmup)
    for k in range(args.rounds):
        order = runners if k % 2 == 0 else runners[::-1]  # no config always runs first
        for r in order:
            r.run_round(args.frames)
        loads.append({"scene": name, "round": k, "loadavg": os.getloadavg()})
        print(f"  round {k + 1}/{args.rounds} done, load {os.getloadavg()[0]:.2f}", flush=True)
    baseline = next((r for r in runners if r.config == DEFAULT), None)
    rows = [summarise(r, baseline) for r in runners]
    for row in rows:
        row["scene"] = name
    return rows


def print_table(rows: list[dict]) -> None:
    head = (
        f"{'scene':<9} {'config':<21} {'ppl':>4} {'crop':>4} {'fps':>5} {'tot p50':>8} {'p95':>6} "
        f"{'mean':>6} {'det*':>6} {'crops*':>6} {'kp*':>6} {'trk*':>5} {'lift*':>6} "
        f"{'place*':>6} {'vs def':>6} goal"
    )
    print("\n" + head)
    print("-" * len(head))
    for row in rows:
        st = row["stages"]

        def pf(stage: str, st=st) -> str:
            return f"{st[stage]['per_frame_ms']:.1f}" if stage in st else "-"

        ratio = row.get("time_vs_defaults", {}).get("median")
        t = st["total"]
        print(
            f"{row['scene']:<9} {row['config']:<21} {row['people_mean']:>4.1f} "
            f"{row['crops_mean']:>4.1f} {row['fps']:>5.1f} "
            f"{t['p50_ms']:>8.1f} {t['p95_ms']:>6.1f} {t['mean_ms']:>6.1f} {pf('detect'):>6} "
            f"{pf('crops'):>6} {pf('keypoints'):>6} {pf('tracking'):>5} {pf('lifting'):>6} "
            f"{pf('placement'):>6} {'' if ratio is None else f'{ratio:.2f}':>6} "
            f"{'yes' if row['goal_met'] else 'no'}"
        )
    print("* = mean ms per frame (a stage that runs 1 frame in N counts 1/N); total in ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per scene")
    ap.add_argument("--frames", type=int, default=20, help="frames per configuration per round")
    ap.add_argument("--warmup", type=int, default=10, help="warm-up frames per configuration")
    ap.add_argument("--max-people", type=int, default=6, help="tiled scenes go 1..this (<= 6)")
    ap.add_argument(
        "--scaling-configs",
        default="",
        help="model:detect_every:threads list for the tiled scenes "
        "(default: the defaults, full:5:1 and lite:5:1 when lite is built)",
    )
    ap.add_argument("--scenes", default="1p,multi,tiled", help="comma-separated subset")
    ap.add_argument(
        "--no-spin-variants",
        dest="spin_variants",
        action="store_false",
        help="skip the 1p variants with ONNX Runtime's thread spinning on",
    )
    ap.add_argument("--quick", action="store_true", help="1 round of 10 frames, 3 warm-up")
    ap.add_argument("--model-dir", default="", help="built models (default: data/models)")
    ap.add_argument("--out", default=str(ROOT / "out" / "bench"))
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.frames, args.warmup = 1, 10, 3

    model_dir = find_model_dir(args.model_dir)
    models = ["blazepose_full"]
    try:
        verify_models(model_dir, ("blazepose_lite",))
        models.append("blazepose_lite")
    except Exception as e:  # not built: say so and go on without it
        print(
            f"blazepose_lite not benchmarked ({e}); build it with "
            "`.venv/bin/python -m pose3d_tools.model_build build --models lite`"
        )
    configs = [DEFAULT] + [Config(m, de, th) for m in models for de in (1, 5) for th in (1, 2)]
    configs = list(dict.fromkeys(configs))
    # Spinning worker threads (ONNX Runtime's own default) for comparison with the backend's.
    one_person = configs + [
        replace(c, spin=True) for c in configs if c.threads != 1 and args.spin_variants
    ]
    if args.scaling_configs:
        scaling = [Config.parse(t) for t in args.scaling_configs.split(",")]
    else:
        scaling = [DEFAULT, Config("blazepose_full", 5, 1)]
        if "blazepose_lite" in models:
            scaling.append(Config("blazepose_lite", 5, 1))
    scenes = set(args.scenes.split(","))

    load_start = os.getloadavg()
    started = time.time()
    loads: list = []
    rows: list[dict] = []
    need = args.warmup + args.rounds * args.frames
    if "1p" in scenes:
        one = fit_640x480(cv2.imread(str(FOOTAGE / "messi5.jpg")))
        rows += run_scene("1p", [one], one_person, args, loads)
    if "multi" in scenes:
        rows += run_scene("multi", vtest_frames(100, need), configs, args, loads)
    if "tiled" in scenes:
        probe = PosePipeline(replace(PipelineSettings(), model_dir=args.model_dir))
        cutout = person_cutout(probe)
        del probe
        wall = wall_background()
        for n in range(1, min(args.max_people, 6) + 1):
            frame = tiled(cutout, n, wall)
            rows += run_scene(f"tiled_{n}", [frame], scaling, args, loads, TILED_SCORE_THRESHOLD)

    report = {
        "goal": f">= {FPS_GOAL:g} FPS and p95 <= {P95_GOAL_MS:g} ms, 1 person, 640x480",
        "machine": machine_facts(load_start, started, loadavg_per_round=loads),
        "settings": {
            **vars(args),
            "defaults": DEFAULT.name,
            "configs": [c.name for c in configs],
            "configs_1p": [c.name for c in one_person] if "1p" in scenes else [],
            "scaling_configs": [c.name for c in scaling],
            "pipeline_defaults": flat_values(PipelineSettings()),
            "scenes": {
                "1p": "messi5.jpg scaled to 480 high, centre-cropped to 640x480, "
                "same frame repeated",
                "multi": f"vtest.avi frames 100..{100 + need - 1} resized 768x576 -> 640x480",
                "tiled_N": "N copies of the left basketball1.png player (detector box +10 %) "
                "over basketball1's wall stretched to 640x480, 3x2 grid of 213x240 cells, each "
                "copy scaled to 90 % of its cell; same frame repeated; detector score_threshold "
                f"{TILED_SCORE_THRESHOLD} (default 0.4) so that all N copies are found",
            },
            "camera": "ideal pinhole, 60 deg horizontal FOV",
        },
        "results": rows,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "pipeline.json").write_text(json.dumps(report, indent=2, default=float) + "\n")
    print_table(rows)
    print(
        f"load average start {load_start[0]:.2f} / end {os.getloadavg()[0]:.2f} "
        f"({os.cpu_count()} CPUs); goal: {report['goal']}"
    )
    print(f"written {out / 'pipeline.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
