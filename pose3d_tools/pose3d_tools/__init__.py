"""pose3d_tools: training, evaluation, export, 2D-model building, calibration data, benchmarks
and the demo of pose3d_ros. Never installed on a robot; depends on the runtime, never the reverse.
"""

from pathlib import Path

__version__ = "0.1.0"

TOOLS_ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_DIR = TOOLS_ROOT / "checkpoints"  # the project's trained lifters (.pt)
TRAINING_CONFIG_DIR = TOOLS_ROOT / "config" / "training"
REPO_ROOT = TOOLS_ROOT.parent  # the tools run from a checkout (pip install -e pose3d_tools)
FOOTAGE_DIR = REPO_ROOT / "data" / "footage"  # fetched by `make setup`
