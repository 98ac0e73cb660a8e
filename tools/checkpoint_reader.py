"""Reads PyTorch checkpoints (`torch.save` files) without PyTorch, safely.

A checkpoint is untrusted input: `torch.load` unpickles it, and a pickle can name any Python
callable (`os.system`, `subprocess.Popen`, ...) and have it called while loading. This reader uses a
restricted unpickler whose `find_class` returns inert stand-ins for the handful of globals a tensor
checkpoint needs and refuses every other global *before* anything is imported or called.

Supported layouts:
- the zip format (PyTorch >= 1.6 default): `<root>/data.pkl` plus one file per storage
  `<root>/data/<key>` (raw little-endian element bytes unless `<root>/byteorder` says "big");
- the legacy format (`_use_new_zipfile_serialization=False`): magic number, protocol version and
  system-info pickles, the object pickle, the sorted storage-key list, then each storage as an
  int64 element count followed by the raw bytes.
Tensor data is read lazily: only the tensors asked for are ever materialised.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# storage class name -> numpy dtype (element type of the storage)
STORAGE_DTYPES: dict[str, np.dtype] = {
    'FloatStorage': np.dtype('float32'),
    'DoubleStorage': np.dtype('float64'),
    'HalfStorage': np.dtype('float16'),
    'BFloat16Storage': np.dtype('uint16'),  # converted to float32 on read
    'LongStorage': np.dtype('int64'),
    'IntStorage': np.dtype('int32'),
    'ShortStorage': np.dtype('int16'),
    'CharStorage': np.dtype('int8'),
    'ByteStorage': np.dtype('uint8'),
    'BoolStorage': np.dtype('bool'),
}


class UnsafeCheckpointError(Exception):
    """The checkpoint names a global that a tensor checkpoint does not need; nothing was executed."""


class CheckpointFormatError(Exception):
    """The file is not a checkpoint this reader understands."""


@dataclass(frozen=True)
class StorageType:
    """Stand-in for `torch.FloatStorage` & co.: only its element type matters."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return STORAGE_DTYPES[self.name]


@dataclass
class StorageRef:
    """One storage of the file, not yet read."""

    kind: StorageType
    key: str
    numel: int
    read_bytes: Callable[[], bytes]
    # legacy views: (offset in elements, length in elements) into the root storage
    view: tuple[int, int] | None = None
    byteorder: str = '<'  # of the element bytes in the file

    def array(self) -> np.ndarray:
        dtype = self.kind.dtype
        raw = self.read_bytes()
        data = np.frombuffer(raw, dtype=dtype.newbyteorder(self.byteorder) if dtype.itemsize > 1 else dtype)
        if self.view is not None:
            start, length = self.view
            data = data[start : start + length]
        return data


@dataclass
class LazyTensor:
    """What `torch._utils._rebuild_tensor_v2` would have built, read on demand."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def dtype_name(self) -> str:
        return self.storage.kind.name

    def numpy(self) -> np.ndarray:
        data = self.storage.array()
        itemsize = data.dtype.itemsize
        if not self.shape:
            out = np.array(data[self.offset])
        else:
            needed = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) + 1
            if any(n == 0 for n in self.shape):
                out = np.zeros(self.shape, dtype=data.dtype)
            elif needed > data.size or self.offset < 0 or any(s < 0 for s in self.stride):
                raise CheckpointFormatError(
                    f'tensor of shape {list(self.shape)} with stride {list(self.stride)} at offset {self.offset} '
                    f'does not fit its storage {self.storage.key} of {data.size} elements'
                )
            else:
                out = np.lib.stride_tricks.as_strided(
                    data[self.offset :], shape=self.shape, strides=[s * itemsize for s in self.stride]
                ).copy()
        if self.storage.kind.name == 'BFloat16Storage':
            out = (out.astype(np.uint32) << 16).view(np.float32)
        return out.astype(out.dtype.newbyteorder('='))


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None):
    if not isinstance(storage, StorageRef):
        raise CheckpointFormatError('_rebuild_tensor_v2 called without a storage')
    return LazyTensor(storage, int(storage_offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data


# (module, name) -> the inert stand-in handed to the unpickler. Nothing else is ever resolved.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ('torch._utils', '_rebuild_tensor_v2'): _rebuild_tensor_v2,
    ('torch._utils', '_rebuild_parameter'): _rebuild_parameter,
    ('torch._utils', '_rebuild_parameter_with_state'): _rebuild_parameter,
    ('collections', 'OrderedDict'): OrderedDict,
    **{('torch', name): StorageType(name) for name in STORAGE_DTYPES},
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only ALLOWED_GLOBALS; storages come through `storage_for`."""

    def __init__(self, file, storage_for: Callable[[tuple], StorageRef]):
        super().__init__(file)
        self._storage_for = storage_for

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        stand_in = ALLOWED_GLOBALS.get((module, name))
        if stand_in is None:
            raise UnsafeCheckpointError(
                f'refusing checkpoint: it references the global {module}.{name}, which a tensor checkpoint '
                'does not need (nothing was imported or executed). Allowed: '
                + ', '.join(sorted(f'{m}.{n}' for m, n in ALLOWED_GLOBALS))
            )
        # fresh objects per reference, so a BUILD opcode aimed at a stand-in (setting its
        # attributes or defaults) cannot change how this or a later checkpoint is read
        if isinstance(stand_in, StorageType):
            return StorageType(stand_in.name)
        if stand_in is OrderedDict:
            return OrderedDict  # a built-in type: its attributes cannot be set
        return lambda *args, **kwargs: stand_in(*args, **kwargs)

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == 'storage'):
            raise CheckpointFormatError(f'unsupported persistent id {pid!r:.80}')
        return self._storage_for(pid)


def _storage_type(value) -> StorageType:
    if not isinstance(value, StorageType):
        raise CheckpointFormatError(f'storage type is not a torch storage class: {value!r:.80}')
    return value


def _load_zip(path: str) -> Any:
    zf = zipfile.ZipFile(path)
    names = zf.namelist()
    pkl = [n for n in names if n.endswith('data.pkl') and n.count('/') == 1]
    if len(pkl) != 1:
        raise CheckpointFormatError(f'{path}: zip file without exactly one <root>/data.pkl (found {pkl or "none"})')
    root = pkl[0][: -len('data.pkl')]
    byteorder = '<'
    if root + 'byteorder' in names and zf.read(root + 'byteorder').strip() == b'big':
        byteorder = '>'

    def storage_for(pid: tuple) -> StorageRef:
        # ('storage', storage_type, key, location, numel)
        if len(pid) < 5:
            raise CheckpointFormatError(f'unsupported storage id {pid!r:.80}')
        kind, key, numel = _storage_type(pid[1]), str(pid[2]), int(pid[4])
        member = f'{root}data/{key}'
        if member not in names:
            raise CheckpointFormatError(f'{path}: storage {key} missing ({member})')
        ref = StorageRef(kind, key, numel, lambda: zf.read(member))
        ref.byteorder = byteorder
        return ref

    with zf.open(pkl[0]) as f:
        return RestrictedUnpickler(io.BytesIO(f.read()), storage_for).load()


def _load_legacy(path: str) -> Any:
    with open(path, 'rb') as f:
        blob = f.read()
    stream = io.BytesIO(blob)

    def no_storage(pid: tuple) -> StorageRef:
        raise CheckpointFormatError(f'{path}: storage reference in a header pickle')

    def plain(stream_: io.BytesIO) -> Any:
        # the header pickles hold only ints, dicts and strings
        return RestrictedUnpickler(stream_, no_storage).load()

    try:
        magic = plain(stream)
    except (pickle.UnpicklingError, EOFError, ValueError) as err:
        raise CheckpointFormatError(f'{path}: neither a zip checkpoint nor a legacy torch.save file ({err})') from err
    if magic != LEGACY_MAGIC:
        raise CheckpointFormatError(f'{path}: not a torch.save file (bad magic number)')
    protocol = plain(stream)
    if protocol != LEGACY_PROTOCOL:
        raise CheckpointFormatError(f'{path}: unsupported legacy protocol {protocol}')
    sys_info = plain(stream)
    little = bool(sys_info.get('little_endian', True)) if isinstance(sys_info, dict) else True
    roots: dict[str, StorageRef] = {}
    views: list[StorageRef] = []

    def storage_for(pid: tuple) -> StorageRef:
        # ('storage', storage_type, root_key, location, numel, view_metadata)
        if len(pid) < 6:
            raise CheckpointFormatError(f'unsupported legacy storage id {pid!r:.80}')
        kind, key, numel, view = _storage_type(pid[1]), str(pid[2]), int(pid[4]), pid[5]
        if key not in roots:
            roots[key] = StorageRef(kind, key, numel, lambda: b'')
        root = roots[key]
        if view is None:
            return root
        view_key, offset, size = view
        ref = StorageRef(kind, str(view_key), int(size), lambda: root.read_bytes(), view=(int(offset), int(size)))
        views.append(ref)
        return ref

    obj = RestrictedUnpickler(stream, storage_for).load()
    keys = plain(stream)
    if not isinstance(keys, list):
        raise CheckpointFormatError(f'{path}: legacy storage key list missing')
    position = stream.tell()
    for key in keys:
        (numel,) = struct.unpack('<q', blob[position : position + 8])
        ref = roots.get(str(key))
        if ref is None:
            raise CheckpointFormatError(f'{path}: storage {key} listed but never referenced')
        nbytes = numel * ref.kind.dtype.itemsize
        start = position + 8
        if start + nbytes > len(blob):
            raise CheckpointFormatError(f'{path}: storage {key} truncated')
        ref.read_bytes = (lambda s, e: lambda: blob[s:e])(start, start + nbytes)
        ref.byteorder = '<' if little else '>'
        position = start + nbytes
    for v in views:
        v.byteorder = '<' if little else '>'
    return obj


def load_checkpoint(path: str) -> Any:
    """The unpickled checkpoint object, with every tensor as a LazyTensor."""
    try:
        if zipfile.is_zipfile(path):
            return _load_zip(path)
        with open(path, 'rb') as f:
            head = f.read(512)
        if len(head) >= 262 and head[257:262] == b'ustar':
            raise CheckpointFormatError(f'{path}: tar checkpoint (PyTorch <= 0.3); re-save it with a newer PyTorch')
        return _load_legacy(path)
    except (UnsafeCheckpointError, CheckpointFormatError):
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error) as err:
        raise CheckpointFormatError(f'{path}: malformed checkpoint ({type(err).__name__}: {err})') from err


def find_state_dict(obj: Any) -> dict[str, LazyTensor]:
    """The tensor dict inside a checkpoint: `obj['state_dict']`, `obj['model']`, or obj itself."""
    candidates = [obj]
    if isinstance(obj, dict):
        for key in ('state_dict', 'model', 'model_state_dict'):
            if isinstance(obj.get(key), dict):
                candidates.insert(0, obj[key])
    for cand in candidates:
        if isinstance(cand, dict):
            tensors = {str(k): v for k, v in cand.items() if isinstance(v, LazyTensor)}
            if tensors:
                return tensors
    raise CheckpointFormatError('no tensors found (expected a dict with "state_dict")')
