"""Lifter registry: build a lifter by name from a plain config dict (as stored in a checkpoint).

    model = build_lifter("nanohtnet", {"frames": 81})
    ckpt = {"name": model.name, "config": config_to_dict(model.config), "state_dict": ...}
    model = build_lifter(ckpt["name"], ckpt["config"])
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from torch import nn

from .hot import HoTMixSTE, HoTMixSTEConfig
from .htnet import HTNet, HTNetConfig
from .mixste import MixSTE, MixSTEConfig
from .nanohtnet import NanoHTNet, NanoHTNetConfig
from .temporal_htnet import TemporalHTNet, TemporalHTNetConfig

LIFTERS: dict[str, tuple[type[nn.Module], type]] = {
    "htnet": (HTNet, HTNetConfig),
    "nanohtnet": (NanoHTNet, NanoHTNetConfig),
    "temporal_htnet": (TemporalHTNet, TemporalHTNetConfig),
    "mixste": (MixSTE, MixSTEConfig),
    "hot_mixste": (HoTMixSTE, HoTMixSTEConfig),
}


def available_lifters() -> list[str]:
    return sorted(LIFTERS)


def config_class(name: str) -> type:
    try:
        return LIFTERS[name][1]
    except KeyError:
        raise KeyError(f"unknown lifter {name!r}; known: {available_lifters()}") from None


def config_to_dict(config: Any) -> dict[str, Any]:
    """Config dataclass -> plain JSON/YAML-able dict (round-trips through ``from_dict``)."""
    return dataclasses.asdict(config)


def config_from_dict(name: str, config: dict[str, Any] | Any | None = None):
    """Dict (may contain ``"preset"``), config instance or None (defaults) -> config dataclass."""
    cls = config_class(name)
    if isinstance(config, cls):
        return config
    return cls.from_dict(config)


def build_lifter(name: str, config: dict[str, Any] | Any | None = None) -> nn.Module:
    """Build lifter ``name`` ("htnet" or "nanohtnet"); ``model.config`` holds the dataclass."""
    cfg = config_from_dict(name, config)  # raises KeyError for unknown names
    return LIFTERS[name][0](cfg)


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """The dict of a lifter checkpoint (shipped or working), tensors on ``map_location``.

    The one place checkpoints are read; ``weights_only=False`` because they hold plain configs
    and training history next to the weights (our own files only).
    """
    import torch

    return torch.load(str(path), map_location=map_location, weights_only=False)


def lifter_from_checkpoint(path_or_dict: Any, map_location: str = "cpu") -> nn.Module:
    """Rebuild a lifter from a checkpoint file or dict and load its weights (eval mode).

    Expected keys: ``name`` (or ``model_name``), ``config`` (plain dict) and ``state_dict``
    (or ``model``). This is the format ``export_onnx`` tests and the runtime rely on.
    """
    ckpt = path_or_dict
    if not isinstance(ckpt, dict):
        ckpt = load_checkpoint(path_or_dict, map_location)
    name = ckpt.get("name", ckpt.get("model_name"))
    if name is None:
        raise KeyError("checkpoint has no 'name' (lifter registry name)")
    state = ckpt.get("state_dict", ckpt.get("model"))
    if state is None:
        raise KeyError("checkpoint has no 'state_dict'")
    model = build_lifter(name, ckpt.get("config"))
    model.load_state_dict(state)
    return model.eval()
