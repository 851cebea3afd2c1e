"""Grad-CAM (METHOD.md s.3), two ways that must agree:

* ``torch_gradcam``: autograd Grad-CAM in PyTorch, alpha = mean_{h,w} dz/dFc (torch.autograd.grad);
* ``cam_from_outputs``: numpy, from the ONNX graph outputs ``features_b{v}`` and ``alpha_b{v}``
  (what the Rust side does).
Both: A = ReLU(sum_k alpha_k Fc_k), bilinear resize (align_corners=False, i.e. half-pixel centres,
no antialiasing) to W x H, min-max normalised to [0, 1] (an all-constant map becomes all zeros).
"""
from __future__ import annotations

import numpy as np

EPS = 1e-12


def _minmax(a: np.ndarray) -> np.ndarray:
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi - lo > EPS else np.zeros_like(a)


def _axis_weights(n_in: int, n_out: int):
    """Source indices and weights of PyTorch's linear interpolation, align_corners=False."""
    scale = n_in / n_out
    src = (np.arange(n_out) + 0.5) * scale - 0.5
    src = np.maximum(src, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    return i0, i1, w1


def resize_bilinear(a: np.ndarray, h: int, w: int) -> np.ndarray:
    """[H0, W0] -> [h, w], same as torch.nn.functional.interpolate(mode='bilinear', align_corners=False)."""
    a = np.asarray(a, np.float64)
    y0, y1, wy = _axis_weights(a.shape[0], h)
    x0, x1, wx = _axis_weights(a.shape[1], w)
    rows = a[y0] * (1 - wy)[:, None] + a[y1] * wy[:, None]
    return rows[:, x0] * (1 - wx)[None, :] + rows[:, x1] * wx[None, :]


def cam_from_outputs(features: np.ndarray, alpha: np.ndarray, width: int, height: int) -> np.ndarray:
    """features [C,h,w], alpha [C] -> CAM [height, width] in [0, 1]."""
    a = np.maximum(np.tensordot(np.asarray(alpha, np.float64), np.asarray(features, np.float64), axes=(0, 0)), 0.0)
    return _minmax(resize_bilinear(a, height, width))


def torch_gradcam(model, x, variant: int, width: int, height: int):
    """Autograd Grad-CAM of WCBnet variant ``variant`` for a batch x [N,3,384,384].
    Returns (probabilities [N], CAMs [N, height, width]) as numpy."""
    import torch
    import torch.nn.functional as F

    model.eval()
    with torch.enable_grad():
        fc = model.features(x)[variant]
        z = model.head(variant, fc)  # the model's own head, GAP or LSE (dropout is off in eval mode)
        grad = torch.autograd.grad(z.sum(), fc)[0]
    alpha = grad.mean(dim=(2, 3))
    a = F.relu((alpha[:, :, None, None] * fc).sum(1, keepdim=True))
    a = F.interpolate(a, size=(height, width), mode="bilinear", align_corners=False)[:, 0].detach().double().numpy()
    cams = np.stack([_minmax(c) for c in a])
    return torch.sigmoid(z[:, 0]).detach().numpy(), cams


def fuse(cams, eps: float = 1e-6) -> np.ndarray:
    """Pixel-wise geometric mean of the per-scale maps, in log space (METHOD.md s.3)."""
    return np.exp(np.mean([np.log(np.asarray(c, np.float64) + eps) for c in cams], axis=0))
