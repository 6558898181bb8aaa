"""2D -> 3D lifters (HTNet, NanoHTNet, Temporal HTNet), their registry and PoseCLR pre-training."""

from .htnet import HTNet, HTNetConfig
from .nanohtnet import NanoHTNet, NanoHTNetConfig, dct_basis
from .poseclr import PoseCLR, nt_xent
from .registry import (
    LIFTERS,
    available_lifters,
    build_lifter,
    config_class,
    config_from_dict,
    config_to_dict,
    lifter_from_checkpoint,
)
from .temporal_htnet import TemporalHTNet, TemporalHTNetConfig

__all__ = [
    "LIFTERS",
    "HTNet",
    "HTNetConfig",
    "NanoHTNet",
    "NanoHTNetConfig",
    "PoseCLR",
    "TemporalHTNet",
    "TemporalHTNetConfig",
    "available_lifters",
    "build_lifter",
    "config_class",
    "config_from_dict",
    "config_to_dict",
    "dct_basis",
    "lifter_from_checkpoint",
    "nt_xent",
]
