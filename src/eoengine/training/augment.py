"""Batch-safe augmentation for any number of bands.

Geometric changes (flips, 90° rotations) apply identically to the image (C, H, W) and to
every target map (mask, values); radiometric ones (gain, offset, noise, blur) change the
image only, per channel, in normalised units. All draws come from the given generator, so
a chip's augmentation depends on (seed, epoch, chip) alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from eoengine.config.schema import AugmentationConfig


def _coin(p: float, gen: torch.Generator | None) -> bool:
    return p > 0 and torch.rand(1, generator=gen).item() < p


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of each channel of (C, H, W), reflect-padded."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = image.shape[0]
    img = image[None]
    pad_w = min(radius, image.shape[-1] - 1)
    pad_h = min(radius, image.shape[-2] - 1)
    kw = kernel[radius - pad_w: radius + pad_w + 1] if pad_w < radius else kernel
    kh = kernel[radius - pad_h: radius + pad_h + 1] if pad_h < radius else kernel
    img = F.conv2d(F.pad(img, (pad_w, pad_w, 0, 0), mode="reflect"), kw.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    img = F.conv2d(F.pad(img, (0, 0, pad_h, pad_h), mode="reflect"), kh.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return img[0]


def radiometric(image: torch.Tensor, cfg: AugmentationConfig, gen: torch.Generator | None = None) -> torch.Tensor:
    """Random per-channel gain and offset, Gaussian noise and blur (each with probability ``cfg.p``)."""
    c = image.shape[0]
    if cfg.gain > 0 and _coin(cfg.p, gen):
        image = image * (1 + (torch.rand(c, 1, 1, generator=gen) * 2 - 1) * cfg.gain)
    if cfg.offset > 0 and _coin(cfg.p, gen):
        image = image + (torch.rand(c, 1, 1, generator=gen) * 2 - 1) * cfg.offset
    if cfg.noise > 0 and _coin(cfg.p, gen):
        image = image + torch.randn(image.shape, generator=gen) * cfg.noise
    if cfg.blur > 0 and _coin(cfg.p, gen):
        sigma = 0.3 + torch.rand(1, generator=gen).item() * max(cfg.blur - 0.3, 0.0)
        image = gaussian_blur(image, sigma)
    return image


def augment(
    image: torch.Tensor, maps: dict[str, torch.Tensor], cfg: AugmentationConfig, gen: torch.Generator | None = None
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Random flips and 90° rotations of image and maps together, then radiometric changes to the image."""
    if cfg.hflip and _coin(0.5, gen):
        image, maps = image.flip(-1), {k: v.flip(-1) for k, v in maps.items()}
    if cfg.vflip and _coin(0.5, gen):
        image, maps = image.flip(-2), {k: v.flip(-2) for k, v in maps.items()}
    if cfg.rot90:
        k = int(torch.randint(0, 4, (1,), generator=gen).item())
        if k:
            image, maps = image.rot90(k, (-2, -1)), {n: v.rot90(k, (-2, -1)) for n, v in maps.items()}
    image = radiometric(image, cfg, gen)
    return image.contiguous(), {k: v.contiguous() for k, v in maps.items()}
