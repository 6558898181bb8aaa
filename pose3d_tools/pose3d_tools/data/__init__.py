"""Datasets for training and evaluating the 2D->3D lifter (Human3.6M, cameras, augmentation).

Human3.6M is licensed for non-commercial research only; so is anything trained on it.
"""

from pose3d_tools.data.cameras import Camera, load_h36m_cameras, sample_robot_cameras
from pose3d_tools.data.h36m import (
    TEST_SUBJECTS,
    TRAIN_SUBJECTS,
    FrameTable,
    default_data_dir,
    load_positions,
    load_split,
)

__all__ = [
    "TEST_SUBJECTS",
    "TRAIN_SUBJECTS",
    "Camera",
    "FrameTable",
    "default_data_dir",
    "load_h36m_cameras",
    "load_positions",
    "load_split",
    "sample_robot_cameras",
]
