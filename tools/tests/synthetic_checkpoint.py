#!/usr/bin/env python3
"""Writes MagFace-shaped checkpoints in PyTorch's file formats without PyTorch.

The pickle stream is emitted opcode by opcode (protocol 2, as torch.save writes it), so the GLOBAL
opcodes name the real torch callables (`torch._utils._rebuild_tensor_v2`, `torch.FloatStorage`, ...)
although no torch module exists here. Used by the pytest tests and, from the command line, by the
Node test that runs an exported model through the pipeline:

    python3 tools/tests/synthetic_checkpoint.py OUT.pth --layers 1,1,1,1 --seed 0
"""

from __future__ import annotations

import argparse
import io
import struct
import sys
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from magface_to_onnx import ARCH_LAYERS, expected_tensors  # noqa: E402


class Global:
    """A GLOBAL opcode: module + name, never resolved while writing."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name


class Reduce:
    """callable(*args) as REDUCE, optionally followed by SETITEMS (OrderedDict contents)."""

    def __init__(self, func: Global, args: tuple, items: list | None = None):
        self.func, self.args, self.items = func, args, items


class PersistentId:
    def __init__(self, pid: tuple):
        self.pid = pid


class Tensor:
    def __init__(self, array: np.ndarray, key: str, storage: str | None = None):
        self.array, self.key = np.ascontiguousarray(array), key
        self.storage = storage or DTYPE_STORAGE[self.array.dtype]


DTYPE_STORAGE = {np.dtype('float32'): 'FloatStorage', np.dtype('float16'): 'HalfStorage', np.dtype('int64'): 'LongStorage',
                 np.dtype('float64'): 'DoubleStorage'}


class PickleWriter:
    """A minimal protocol-2 pickler for the object shapes torch.save produces."""

    def __init__(self, legacy: bool = False):
        self.out = io.BytesIO()
        self.legacy = legacy

    def dump(self, obj) -> bytes:
        self.out.write(b'\x80\x02')
        self.write(obj)
        self.out.write(b'.')
        return self.out.getvalue()

    def write(self, obj) -> None:
        w = self.out.write
        if obj is None:
            w(b'N')
        elif obj is True:
            w(b'\x88')
        elif obj is False:
            w(b'\x89')
        elif isinstance(obj, int):
            if -(2**31) <= obj < 2**31:
                w(b'J' + struct.pack('<i', obj))
            else:
                raw = obj.to_bytes((obj.bit_length() + 8) // 8, 'little', signed=True)
                w(b'\x8a' + bytes([len(raw)]) + raw)
        elif isinstance(obj, float):
            w(b'G' + struct.pack('>d', obj))
        elif isinstance(obj, str):
            raw = obj.encode('utf-8')
            w(b'X' + struct.pack('<I', len(raw)) + raw)
        elif isinstance(obj, Global):
            w(b'c' + obj.module.encode() + b'\n' + obj.name.encode() + b'\n')
        elif isinstance(obj, tuple):
            if not obj:
                w(b')')
            else:
                w(b'(')
                for item in obj:
                    self.write(item)
                w(b't')
        elif isinstance(obj, list):
            w(b']')
            if obj:
                w(b'(')
                for item in obj:
                    self.write(item)
                w(b'e')
        elif isinstance(obj, OrderedDict):
            self.write(Reduce(Global('collections', 'OrderedDict'), (), list(obj.items())))
        elif isinstance(obj, dict):
            w(b'}')
            self.write_items(list(obj.items()))
        elif isinstance(obj, Reduce):
            self.write(obj.func)
            self.write(obj.args)
            w(b'R')
            if obj.items:
                self.write_items(obj.items)
        elif isinstance(obj, PersistentId):
            self.write(obj.pid)
            w(b'Q')
        elif isinstance(obj, Tensor):
            self.write(self.tensor_reduce(obj))
        else:
            raise TypeError(f'cannot write {type(obj)}')

    def write_items(self, items: list) -> None:
        if not items:
            return
        self.out.write(b'(')
        for k, v in items:
            self.write(k)
            self.write(v)
        self.out.write(b'u')

    def tensor_reduce(self, t: Tensor) -> Reduce:
        storage = Global('torch', t.storage)
        numel = int(t.array.size)
        pid = ('storage', storage, t.key, 'cpu', numel, None) if self.legacy else ('storage', storage, t.key, 'cpu', numel)
        stride, acc = [], 1
        for n in reversed(t.array.shape):
            stride.insert(0, acc)
            acc *= n
        return Reduce(Global('torch._utils', '_rebuild_tensor_v2'),
                      (PersistentId(pid), 0, tuple(t.array.shape), tuple(stride), False, OrderedDict()))


def tensors_in(obj) -> list[Tensor]:
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in tensors_in(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in tensors_in(v)]
    return []


def save_zip(obj, path: str, root: str = 'archive') -> None:
    """torch.save's zip format: <root>/data.pkl, <root>/data/<key>, <root>/version, <root>/byteorder."""
    data = PickleWriter().dump(obj)
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_STORED) as zf:
        zf.writestr(f'{root}/data.pkl', data)
        zf.writestr(f'{root}/byteorder', 'little')
        for t in tensors_in(obj):
            zf.writestr(f'{root}/data/{t.key}', t.array.astype(t.array.dtype.newbyteorder('<')).tobytes())
        zf.writestr(f'{root}/version', '3\n')


def save_legacy(obj, path: str) -> None:
    """torch.save(..., _use_new_zipfile_serialization=False)."""
    def small(value) -> bytes:
        return PickleWriter().dump(value)

    tensors = tensors_in(obj)
    with open(path, 'wb') as f:
        f.write(small(0x1950A86A20F9469CFC6C))
        f.write(small(1001))
        f.write(small({'protocol_version': 1001, 'little_endian': True, 'type_sizes': {'short': 2, 'int': 4, 'long': 4}}))
        f.write(PickleWriter(legacy=True).dump(obj))
        keys = sorted(t.key for t in tensors)
        f.write(small(keys))
        by_key = {t.key: t for t in tensors}
        for key in keys:
            arr = by_key[key].array
            f.write(struct.pack('<q', arr.size))
            f.write(arr.astype(arr.dtype.newbyteorder('<')).tobytes())


def random_backbone(layers: tuple[int, ...], dim: int = 512, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights with healthy activations: He-scaled convs, BN stats near 1, PReLU 0.25±."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in expected_tensors(layers, dim):
        if name.endswith('running_var'):
            v = rng.uniform(0.5, 1.5, shape)
        elif name.endswith('running_mean') or name.endswith('.bias'):
            v = rng.normal(0, 0.1, shape)
        elif name.endswith('prelu.weight'):
            v = rng.uniform(0.1, 0.4, shape)
        elif len(shape) == 1:  # BN gamma
            v = rng.uniform(0.5, 1.5, shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            v = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
        out[name] = v.astype(np.float32)
    return out


def magface_checkpoint(weights: dict[str, np.ndarray], prefix: str = 'features.module.', extra: dict | None = None):
    """The object MagFace's trainer saves: {'epoch', 'arch', 'state_dict': OrderedDict(...)}."""
    state = OrderedDict()
    for i, (name, arr) in enumerate(weights.items()):
        state[prefix + name] = Tensor(arr, str(i))
        if name.endswith('running_var'):
            state[prefix + name.replace('running_var', 'num_batches_tracked')] = Tensor(np.array(1000, dtype=np.int64), f'n{i}')
    # the MagLinear classifier of training is in real checkpoints too; the converter ignores it
    state['module.fc.weight' if prefix.startswith('module') else 'fc.weight'] = Tensor(np.zeros((8, 4), np.float32), 'fc')
    obj = {'epoch': 25, 'arch': 'iresnet', 'state_dict': state}
    if extra:
        obj.update(extra)
    return obj


def main() -> int:
    ap = argparse.ArgumentParser(description='write a random-weight MagFace checkpoint (torch zip format)')
    ap.add_argument('output')
    ap.add_argument('--arch', choices=sorted(ARCH_LAYERS), default='iresnet18')
    ap.add_argument('--layers', help='blocks per stage, e.g. 1,1,1,1 (overrides --arch)')
    ap.add_argument('--dim', type=int, default=512)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args()
    layers = tuple(int(v) for v in args.layers.split(',')) if args.layers else ARCH_LAYERS[args.arch]
    save_zip(magface_checkpoint(random_backbone(layers, args.dim, args.seed)), args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
