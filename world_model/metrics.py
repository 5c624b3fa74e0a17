"""Image quality metrics for predicted subgoals: PSNR and SSIM on uint8 RGB.

SSIM follows Wang et al. 2004 (11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, data
range 255, "valid" borders, mean over channels). `ssim` is the batched torch path used by
evaluation; `ssim_reference` is a plain numpy transcription kept beside it to test it.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

_C1 = (0.01 * 255) ** 2
_C2 = (0.03 * 255) ** 2


def psnr(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-image PSNR in dB for uint8 batches (B, H, W, 3); identical images give +inf."""
    p = np.asarray(pred, np.float64)
    t = np.asarray(target, np.float64)
    if p.shape != t.shape:
        raise ValueError(f"psnr: shapes differ {p.shape} vs {t.shape}")
    mse = ((p - t) ** 2).reshape(len(p), -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def _gaussian(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-image SSIM for uint8 batches (B, H, W, 3), computed with separable convolutions."""
    if pred.shape != target.shape:
        raise ValueError(f"ssim: shapes differ {pred.shape} vs {target.shape}")
    x = torch.from_numpy(np.asarray(pred, np.float64)).permute(0, 3, 1, 2)
    y = torch.from_numpy(np.asarray(target, np.float64)).permute(0, 3, 1, 2)
    c = x.shape[1]
    g = torch.from_numpy(_gaussian())
    gx = g.view(1, 1, 1, -1).repeat(c, 1, 1, 1)
    gy = g.view(1, 1, -1, 1).repeat(c, 1, 1, 1)

    def blur(z):
        return F.conv2d(F.conv2d(z, gx, groups=c), gy, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    m = ((2 * mx * my + _C1) * (2 * sxy + _C2)) / ((mx * mx + my * my + _C1) * (sxx + syy + _C2))
    return m.mean(dim=(1, 2, 3)).numpy()


def ssim_reference(pred: np.ndarray, target: np.ndarray) -> float:
    """One image (H, W, 3), window by window: slow, obviously the textbook formula."""
    x = np.asarray(pred, np.float64)
    y = np.asarray(target, np.float64)
    w = np.outer(_gaussian(), _gaussian())
    k = w.shape[0]
    vals = []
    for ch in range(x.shape[2]):
        for i in range(x.shape[0] - k + 1):
            for j in range(x.shape[1] - k + 1):
                a = x[i : i + k, j : j + k, ch]
                b = y[i : i + k, j : j + k, ch]
                ma, mb = (w * a).sum(), (w * b).sum()
                va = (w * (a - ma) ** 2).sum()
                vb = (w * (b - mb) ** 2).sum()
                cov = (w * (a - ma) * (b - mb)).sum()
                vals.append(((2 * ma * mb + _C1) * (2 * cov + _C2)) / ((ma**2 + mb**2 + _C1) * (va + vb + _C2)))
    return float(np.mean(vals))
