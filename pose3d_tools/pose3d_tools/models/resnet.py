"""A small ResNet backbone for the image models: three feature levels at strides 8, 16 and 32.

torchvision is not installable beside the CPU torch here, so the residual network is written out
(He et al. 2016, "basic" two-conv blocks). A 128 x 128 crop gives maps of 16 x 16, 8 x 8 and 4 x 4,
the multi-scale input of the deformable encoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class ResNetConfig:
    stem_channels: int = 24  # stride-4 stem (two stride-2 3 x 3 convs)
    channels: tuple[int, ...] = (32, 64, 128, 192)  # stages at strides 4, 8, 16, 32
    blocks: tuple[int, ...] = (1, 1, 1, 1)  # basic blocks per stage


class BasicBlock(nn.Module):
    """Two 3 x 3 conv-BN layers with an identity (or 1 x 1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.relu(y + self.shortcut(x))


class ResNetBackbone(nn.Module):
    """Image (B, 3, S, S) -> feature maps at strides 8, 16, 32: [(B, C_k, S/s_k, S/s_k)]."""

    def __init__(self, config: ResNetConfig | None = None):
        super().__init__()
        self.config = cfg = config or ResNetConfig()
        if len(cfg.channels) != 4 or len(cfg.blocks) != 4:
            raise ValueError("ResNetConfig needs four stages (strides 4, 8, 16, 32)")
        c = cfg.stem_channels
        self.stem = nn.Sequential(
            nn.Conv2d(3, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
            nn.Conv2d(c, c, 3, 2, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
        )
        stages = []
        for i, (width, n) in enumerate(zip(cfg.channels, cfg.blocks, strict=True)):
            layers = [BasicBlock(c, width, 1 if i == 0 else 2)]
            layers += [BasicBlock(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*layers))
            c = width
        self.stages = nn.ModuleList(stages)

    @property
    def level_channels(self) -> tuple[int, ...]:
        """Channels of the three returned levels (strides 8, 16, 32)."""
        return tuple(self.config.channels[1:])

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(image)
        levels = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i >= 1:
                levels.append(x)
        return levels
