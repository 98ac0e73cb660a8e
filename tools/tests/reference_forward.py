"""An independent numpy forward pass of the MagFace iResNet, written from the PyTorch module
(models/iresnet.py of the MagFace repository) with every BatchNorm applied as it is at inference,
unfolded, in float64. The converter's ONNX graph is checked against it."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

EPS = 2e-5


def conv2d(x: np.ndarray, w: np.ndarray, stride: int, pad: int) -> np.ndarray:
    k = w.shape[-1]
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # N,C,H,W,k,k
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))  # N,H,W,O
    return out.transpose(0, 3, 1, 2)


def batchnorm(x: np.ndarray, w: dict, prefix: str) -> np.ndarray:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = w[f'{prefix}.running_mean'].reshape(shape)
    var = w[f'{prefix}.running_var'].reshape(shape)
    gamma = w[f'{prefix}.weight'].reshape(shape)
    beta = w[f'{prefix}.bias'].reshape(shape)
    return (x - mean) / np.sqrt(var + EPS) * gamma + beta


def prelu(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, a.reshape(1, -1, 1, 1) * x)


def iresnet_forward(weights: dict, layers: tuple[int, ...], x: np.ndarray) -> np.ndarray:
    w = {k: v.astype(np.float64) for k, v in weights.items()}
    x = x.astype(np.float64)
    x = conv2d(x, w['conv1.weight'], 1, 1)
    x = prelu(batchnorm(x, w, 'bn1'), w['prelu.weight'])
    for stage, blocks in enumerate(layers):
        for block in range(blocks):
            p = f'layer{stage + 1}.{block}'
            stride = 2 if block == 0 else 1
            out = batchnorm(x, w, f'{p}.bn1')
            out = conv2d(out, w[f'{p}.conv1.weight'], 1, 1)
            out = prelu(batchnorm(out, w, f'{p}.bn2'), w[f'{p}.prelu.weight'])
            out = conv2d(out, w[f'{p}.conv2.weight'], stride, 1)
            out = batchnorm(out, w, f'{p}.bn3')
            identity = x
            if f'{p}.downsample.0.weight' in w:
                identity = batchnorm(conv2d(x, w[f'{p}.downsample.0.weight'], stride, 0), w, f'{p}.downsample.1')
            x = out + identity
    x = batchnorm(x, w, 'bn2')
    x = x.reshape(x.shape[0], -1)
    x = x @ w['fc.weight'].T + w['fc.bias']
    return batchnorm(x, w, 'features')
