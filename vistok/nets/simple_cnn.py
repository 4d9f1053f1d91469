"""The seed project's SimpleCNN (CelebA 64×64 → 16×16): strided convs, ReLU residual stack, tanh output."""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_layers import GradientCheckpointingLayer

from ..registry import NETS
from .base import NetFamily, check_positive_ints


class ResidualStackBlock(GradientCheckpointingLayer):
    """x + conv1×1(ReLU(conv3×3(ReLU(x)))), both convs without bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)


class SimpleCNNEncoder(nn.Module):
    def __init__(self, in_channels: int, hidden_channels: int, num_res_blocks: int, num_downsamples: int):
        super().__init__()
        widths = [hidden_channels // 2 ** (num_downsamples - 1 - i) for i in range(num_downsamples)]
        layers: list[nn.Module] = []
        prev = in_channels
        for width in widths:
            layers += [nn.Conv2d(prev, width, 4, stride=2, padding=1), nn.LeakyReLU()]
            prev = width
        layers.append(nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1))
        layers += [ResidualStackBlock(hidden_channels) for _ in range(num_res_blocks)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SimpleCNNDecoder(nn.Module):
    def __init__(self, out_channels: int, hidden_channels: int, num_res_blocks: int, num_downsamples: int):
        super().__init__()
        widths = [hidden_channels // 2**i for i in range(num_downsamples)]
        layers: list[nn.Module] = [nn.Conv2d(hidden_channels, hidden_channels, 3, padding=1)]
        layers += [ResidualStackBlock(hidden_channels) for _ in range(num_res_blocks)]
        for i, width in enumerate(widths):
            last = i == num_downsamples - 1
            nxt = out_channels if last else widths[i + 1]
            layers.append(nn.ConvTranspose2d(width, nxt, 4, stride=2, padding=1))
            layers.append(nn.Tanh() if last else nn.LeakyReLU())
        self.layers = nn.Sequential(*layers)

    @property
    def last_layer(self) -> nn.Parameter:
        return self.layers[-2].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


@NETS.register("simple_cnn")
class SimpleCNN(NetFamily):
    """SimpleCNN encoder/decoder (seed defaults: hidden 256, 2 residual blocks, two stride-2 stages = f4)."""

    tiny = {"hidden_channels": 16, "num_res_blocks": 1}

    def __init__(self, hidden_channels: int = 256, num_res_blocks: int = 2, num_downsamples: int = 2):
        self.hidden_channels = hidden_channels
        self.num_res_blocks = num_res_blocks
        self.num_downsamples = num_downsamples

    @classmethod
    def check_spec(cls, spec: dict) -> None:
        check_positive_ints(spec, "hidden_channels", "num_downsamples")
        if spec["num_res_blocks"] < 0:
            raise ValueError(f"net option 'num_res_blocks' must be >= 0, got {spec['num_res_blocks']}")
        if spec["hidden_channels"] % 2 ** (spec["num_downsamples"] - 1):
            raise ValueError(
                f"simple_cnn hidden_channels ({spec['hidden_channels']}) must be divisible by "
                f"2**(num_downsamples - 1) = {2 ** (spec['num_downsamples'] - 1)}"
            )

    @property
    def latent_channels(self) -> int:
        return self.hidden_channels

    @property
    def downsample_factor(self) -> int:
        return 2**self.num_downsamples

    def build_encoder(self, in_channels: int) -> nn.Module:
        return SimpleCNNEncoder(in_channels, self.hidden_channels, self.num_res_blocks, self.num_downsamples)

    def build_decoder(self, out_channels: int) -> nn.Module:
        return SimpleCNNDecoder(out_channels, self.hidden_channels, self.num_res_blocks, self.num_downsamples)
