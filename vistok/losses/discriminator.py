"""Taming-Transformers' PatchGAN discriminator (pix2pix ``NLayerDiscriminator``)."""

from __future__ import annotations

from torch import nn

DISCRIMINATOR_NORMS = ("batch", "group", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(32 if channels % 32 == 0 else 1, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown discriminator norm {kind!r}; valid: {list(DISCRIMINATOR_NORMS)}")


class NLayerDiscriminator(nn.Module):
    """PatchGAN: (B, C, H, W) images → (B, 1, h, w) real/fake logits, one per overlapping patch.

    ``num_layers`` strided 4×4 convolutions (channels ``base_channels · min(2^i, 8)``), one stride-1 block, and a
    stride-1 4×4 output conv; LeakyReLU(0.2). With 3 layers the receptive field is 70×70 px. ``norm`` is
    ``batch`` (Taming's default), ``group`` or ``none``. Weights are initialised N(0, 0.02) (norm scales N(1, 0.02)).
    """

    def __init__(self, input_channels: int = 3, base_channels: int = 64, num_layers: int = 3, norm: str = "batch"):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        use_bias = norm == "none"  # a norm right after the conv makes a bias redundant
        layers: list[nn.Module] = [
            nn.Conv2d(input_channels, base_channels, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        channels = base_channels
        for i in range(1, num_layers + 1):
            stride = 2 if i < num_layers else 1
            out_channels = base_channels * min(2**i, 8)
            layers += [
                nn.Conv2d(channels, out_channels, kernel_size=4, stride=stride, padding=1, bias=use_bias),
                _norm(norm, out_channels),
                nn.LeakyReLU(0.2, inplace=True),
            ]
            channels = out_channels
        layers.append(nn.Conv2d(channels, 1, kernel_size=4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, 0.0, 0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.normal_(module.weight, 1.0, 0.02)
                nn.init.zeros_(module.bias)

    def forward(self, images):
        return self.main(images)
