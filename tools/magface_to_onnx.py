#!/usr/bin/env python3
"""Converts an official MagFace checkpoint (PyTorch `.pth`) into a facepipe embedder: ONNX + manifest.

Needs only the standard library, numpy and `onnx` (onnxruntime and Pillow only for --verify-toy).
No PyTorch: the checkpoint is read by `checkpoint_reader`, whose restricted unpickler refuses any
global a tensor checkpoint does not need, without importing or calling it.

    python3 tools/magface_to_onnx.py magface_epoch_00025.pth --arch iresnet100 \\
        -o models/magface_iresnet100.onnx --verify-toy test/fixtures/magface-toy

Writes OUT.onnx and OUT's manifest entry beside it (`<name>.manifest.json`, read by facepipe next to
the folder's `manifest.json`). Graph: the MagFace iResNet backbone in inference mode, BatchNorms
folded into the neighbouring convolution or into the final Gemm wherever that is exact; outputs
`embedding` (raw feature: its L2 norm is the MagFace magnitude) and `embedding_norm`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkpoint_reader import (  # noqa: E402
    CheckpointFormatError,
    LazyTensor,
    UnsafeCheckpointError,
    find_state_dict,
    load_checkpoint,
)

BN_EPS = 2e-5
STAGE_CHANNELS = (64, 128, 256, 512)
ARCH_LAYERS = {
    'iresnet18': (2, 2, 2, 2),
    'iresnet34': (3, 4, 6, 3),
    'iresnet50': (3, 4, 14, 3),
    'iresnet100': (3, 13, 30, 3),
}
INPUT_SIZE = 112
FINAL_SPATIAL = 7  # 112 / 2^4
KEY_PREFIXES = ('features.module.', 'module.features.')
OPSET = 13
IR_VERSION = 7
PRODUCER = 'facepipe-magface_to_onnx'

# The bundled manifest (models/manifest.json) is where the preprocessing contract is written
# (conventions.preprocessing: decode, detection copy, pre-shrink, warp): a converted model is run by
# the same pipeline, so its manifest carries the same conventions, taken from there rather than
# copied here, so the two cannot drift apart.
BUNDLED_MANIFEST = Path(__file__).resolve().parent.parent / 'models' / 'manifest.json'
ALIGNMENT_METHOD = ('least-squares similarity transform of the 5 detector landmarks onto the template; '
                    'a face the warp shrinks 2x or more pre-shrunk by its k x k block mean '
                    '(conventions.preprocessing.preShrink); bilinear warp')


def bundled_conventions() -> dict:
    """The bundled manifest's conventions (pixel transform, coordinates, preprocessing contract)."""
    return dict(json.loads(BUNDLED_MANIFEST.read_text(encoding='utf-8'))['conventions'])


# ArcFace 112×112 five-point template (the alignment every MagFace model was trained with).
ARCFACE_TEMPLATE = [
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
]

# Default calibration per backbone. MagFace trains magnitudes into [l_a, u_a] = [10, 110]; the
# released iResNet100 gives 21.8–30.2 on the official toy faces (rising quality) and ~20–35 on good
# aligned faces. No per-backbone figures are published for the other backbones, whose training uses
# the same loss and bounds, so they start from the same values: run `facepipe models calibrate` on
# your own photos and re-export with --drop-below / --quality-range (or edit the manifest).
# sameIdentityCosine: typical verification threshold of 512-d ArcFace-family models (LFW ~0.25–0.3).
DEFAULT_CALIBRATION = {
    'iresnet100': {'dropBelow': 20.0, 'range': (15.0, 35.0), 'sameIdentityCosine': 0.3,
                   'basis': 'released iResNet100 toy-face magnitudes 21.8-30.2; training bounds l_a=10, u_a=110'},
    'iresnet50': {'dropBelow': 20.0, 'range': (15.0, 35.0), 'sameIdentityCosine': 0.3,
                  'basis': 'same loss and bounds as iResNet100 (no published magnitudes): provisional, calibrate'},
    'iresnet34': {'dropBelow': 20.0, 'range': (15.0, 35.0), 'sameIdentityCosine': 0.3,
                  'basis': 'same loss and bounds as iResNet100 (no published magnitudes): provisional, calibrate'},
    'iresnet18': {'dropBelow': 20.0, 'range': (15.0, 35.0), 'sameIdentityCosine': 0.3,
                  'basis': 'same loss and bounds as iResNet100 (no published magnitudes): provisional, calibrate'},
}
CUSTOM_CALIBRATION = {'dropBelow': 20.0, 'range': (15.0, 35.0), 'sameIdentityCosine': 0.3,
                      'basis': 'custom depth: iResNet100 defaults, provisional, calibrate'}


class ConversionError(Exception):
    """A checkpoint that does not fit the requested backbone (or is not a MagFace backbone)."""


# ---------------------------------------------------------------------------------------------
# Backbone description: the expected tensors, in module order
# ---------------------------------------------------------------------------------------------


def bn_names(prefix: str, channels: int) -> list[tuple[str, tuple[int, ...]]]:
    return [(f'{prefix}.{p}', (channels,)) for p in ('weight', 'bias', 'running_mean', 'running_var')]


def block_has_downsample(stage: int, block: int) -> bool:
    # every stage's first block has stride 2, hence a 1×1 downsample on the identity path
    return block == 0


def expected_tensors(layers: tuple[int, ...], dim: int) -> list[tuple[str, tuple[int, ...]]]:
    """Every backbone tensor the graph uses, with its shape (num_batches_tracked is not used)."""
    out: list[tuple[str, tuple[int, ...]]] = [('conv1.weight', (64, 3, 3, 3)), *bn_names('bn1', 64), ('prelu.weight', (64,))]
    inplanes = 64
    for stage, (planes, blocks) in enumerate(zip(STAGE_CHANNELS, layers)):
        for block in range(blocks):
            p = f'layer{stage + 1}.{block}'
            out += bn_names(f'{p}.bn1', inplanes)
            out.append((f'{p}.conv1.weight', (planes, inplanes, 3, 3)))
            out += bn_names(f'{p}.bn2', planes)
            out.append((f'{p}.prelu.weight', (planes,)))
            out.append((f'{p}.conv2.weight', (planes, planes, 3, 3)))
            out += bn_names(f'{p}.bn3', planes)
            if block_has_downsample(stage, block):
                out.append((f'{p}.downsample.0.weight', (planes, inplanes, 1, 1)))
                out += bn_names(f'{p}.downsample.1', planes)
            inplanes = planes
    out += bn_names('bn2', 512)
    out += [('fc.weight', (dim, 512 * FINAL_SPATIAL * FINAL_SPATIAL)), ('fc.bias', (dim,))]
    out += bn_names('features', dim)
    return out


def backbone_tensors(state: dict[str, LazyTensor]) -> tuple[dict[str, LazyTensor], str]:
    """The backbone's own tensors with the MagFace wrapper prefix stripped, and that prefix."""
    for prefix in KEY_PREFIXES:
        found = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if found:
            return found, prefix
    if 'conv1.weight' in state:  # a bare backbone state dict
        return dict(state), ''
    sample = ', '.join(list(state)[:5])
    raise ConversionError(f'no backbone tensors: keys start with neither {" nor ".join(KEY_PREFIXES)} (first keys: {sample})')


def guess_layers(names: set[str]) -> tuple[int, ...]:
    counts = []
    for stage in range(1, 5):
        blocks = {int(n.split('.')[1]) for n in names if n.startswith(f'layer{stage}.') and n.split('.')[1].isdigit()}
        counts.append(max(blocks) + 1 if blocks else 0)
    return tuple(counts)


def describe_layers(layers: tuple[int, ...]) -> str:
    for name, arch_layers in ARCH_LAYERS.items():
        if arch_layers == layers:
            return f'{name} {list(layers)}'
    return f'blocks per stage {list(layers)}'


def check_shapes(tensors: dict[str, LazyTensor], layers: tuple[int, ...], arch: str) -> int:
    """Validates names and shapes in module order; returns the embedding size. The first problem
    raises ConversionError naming the tensor, the expected shape and the checkpoint's shape."""
    fc = tensors.get('fc.weight')
    dim = fc.shape[0] if fc is not None and len(fc.shape) == 2 else 512
    hint = f'the checkpoint looks like {describe_layers(guess_layers(set(tensors)))}'
    expected = expected_tensors(layers, dim)
    for name, shape in expected:
        t = tensors.get(name)
        if t is None:
            raise ConversionError(f'--arch {arch}: tensor {name} (expected shape {list(shape)}) is missing from the checkpoint; {hint}')
        if tuple(t.shape) != shape:
            raise ConversionError(f'--arch {arch}: tensor {name} has shape {list(t.shape)} in the checkpoint, expected {list(shape)}; {hint}')
    known = {n for n, _ in expected}
    # checkpoint order is module order (state dicts are ordered), so the first extra is the first layer
    extra = [n for n in tensors if n not in known and not n.endswith('num_batches_tracked')]
    if extra:
        raise ConversionError(f'--arch {arch}: unexpected tensor {extra[0]} {list(tensors[extra[0]].shape)} in the checkpoint ({len(extra)} unused); {hint}')
    return dim


# ---------------------------------------------------------------------------------------------
# Graph construction with BatchNorm folding
# ---------------------------------------------------------------------------------------------


def bn_affine(w: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """BatchNorm in inference mode as y = s·x + t (float64)."""
    gamma, beta = w[f'{prefix}.weight'], w[f'{prefix}.bias']
    mean, var = w[f'{prefix}.running_mean'], w[f'{prefix}.running_var']
    s = gamma / np.sqrt(var + BN_EPS)
    return s, beta - mean * s


@dataclass
class GraphBuilder:
    nodes: list
    initializers: list
    counter: int = 0

    def const(self, name: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs) -> str:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    def conv(self, x: str, name: str, weight: np.ndarray, bias: np.ndarray, stride: int) -> str:
        k = weight.shape[-1]
        pad = k // 2
        return self.node(
            'Conv', [x, self.const(f'{name}.weight', weight), self.const(f'{name}.bias', bias)], name,
            kernel_shape=[k, k], strides=[stride, stride], pads=[pad, pad, pad, pad],
        )

    def conv_bn(self, x: str, w: dict[str, np.ndarray], conv: str, bn: str, stride: int) -> str:
        """Conv (no bias) followed by BN: exact fold into the conv's weights and a bias."""
        s, t = bn_affine(w, bn)
        return self.conv(x, conv, w[f'{conv}.weight'] * s[:, None, None, None], t, stride)

    def channel_affine(self, x: str, w: dict[str, np.ndarray], bn: str) -> str:
        """BN before a zero-padded conv cannot fold into it exactly (the padding would become
        BN(0) = t instead of 0), so it stays as a per-channel Mul + Add."""
        s, t = bn_affine(w, bn)
        scaled = self.node('Mul', [x, self.const(f'{bn}.scale', s[:, None, None])], f'{bn}.mul')
        return self.node('Add', [scaled, self.const(f'{bn}.shift', t[:, None, None])], f'{bn}.add')

    def prelu(self, x: str, w: dict[str, np.ndarray], name: str) -> str:
        return self.node('PRelu', [x, self.const(f'{name}.weight', w[f'{name}.weight'][:, None, None])], name)


def build_model(w: dict[str, np.ndarray], layers: tuple[int, ...], dim: int, with_norm: bool = True):
    """The iResNet backbone as an ONNX ModelProto (float32, dynamic batch)."""
    from onnx import TensorProto, helper

    g = GraphBuilder([], [])
    x = g.conv_bn('input', w, 'conv1', 'bn1', 1)
    x = g.prelu(x, w, 'prelu')
    for stage, blocks in enumerate(layers):
        for block in range(blocks):
            p = f'layer{stage + 1}.{block}'
            stride = 2 if block == 0 else 1
            identity = x
            y = g.channel_affine(x, w, f'{p}.bn1')
            y = g.conv_bn(y, w, f'{p}.conv1', f'{p}.bn2', 1)
            y = g.prelu(y, w, f'{p}.prelu')
            y = g.conv_bn(y, w, f'{p}.conv2', f'{p}.bn3', stride)
            if block_has_downsample(stage, block):
                identity = g.conv_bn(x, w, f'{p}.downsample.0', f'{p}.downsample.1', stride)
            x = g.node('Add', [y, identity], f'{p}.add')
    # bn2 (2d) -> dropout (identity at inference) -> flatten (C,H,W) -> fc -> features (BN1d):
    # all affine with no padding in between, so they fold exactly into one Gemm.
    s2, t2 = bn_affine(w, 'bn2')
    s3, t3 = bn_affine(w, 'features')
    spatial = FINAL_SPATIAL * FINAL_SPATIAL
    s2e, t2e = np.repeat(s2, spatial), np.repeat(t2, spatial)
    fc_w, fc_b = w['fc.weight'], w['fc.bias']
    gemm_w = s3[:, None] * fc_w * s2e[None, :]
    gemm_b = s3 * (fc_w @ t2e + fc_b) + t3
    flat = g.node('Flatten', [x], 'flatten', axis=1)
    g.nodes.append(helper.make_node('Gemm', [flat, g.const('fc.weight', gemm_w), g.const('fc.bias', gemm_b)], ['embedding'], name='fc', transB=1))
    outputs = [helper.make_tensor_value_info('embedding', TensorProto.FLOAT, ['N', dim])]
    if with_norm:
        sq = g.node('ReduceSumSquare', ['embedding'], 'norm.sumsq', axes=[1], keepdims=1)
        clamped = g.node('Max', [sq, g.const('norm.floor', np.array([1e-10]))], 'norm.max')
        root = g.node('Sqrt', [clamped], 'norm.sqrt')
        g.nodes.append(helper.make_node('Div', ['embedding', root], ['embedding_norm'], name='norm.div'))
        outputs.append(helper.make_tensor_value_info('embedding_norm', TensorProto.FLOAT, ['N', dim]))
    graph = helper.make_graph(
        g.nodes, 'magface_iresnet',
        [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', 3, INPUT_SIZE, INPUT_SIZE])],
        outputs, g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', OPSET)], producer_name=PRODUCER)
    model.ir_version = IR_VERSION
    return model


def convert(checkpoint: str, arch: str, layers: tuple[int, ...] | None = None):
    """Reads and validates a checkpoint; returns (onnx model, info dict)."""
    layers = layers or ARCH_LAYERS[arch]
    state = find_state_dict(load_checkpoint(checkpoint))
    tensors, prefix = backbone_tensors(state)
    dim = check_shapes(tensors, layers, arch)
    weights = {name: tensors[name].numpy().astype(np.float64) for name, _ in expected_tensors(layers, dim)}
    bad = [n for n, v in weights.items() if not np.all(np.isfinite(v))]
    if bad:
        raise ConversionError(f'tensor {bad[0]} holds NaN or infinite values')
    model = build_model(weights, layers, dim)
    import onnx

    onnx.checker.check_model(model)
    info = {'arch': arch, 'layers': list(layers), 'dim': dim, 'keyPrefix': prefix, 'tensors': len(weights),
            'dtype': sorted({tensors[n].dtype_name for n in weights})}
    return model, info


# ---------------------------------------------------------------------------------------------
# Manifest
# ---------------------------------------------------------------------------------------------


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def manifest_entry(name: str, onnx_path: str, checkpoint: str, info: dict, calibration: dict) -> dict:
    lo, hi = calibration['range']
    dim = info['dim']
    drop = calibration['dropBelow']
    return {
        'name': name,
        'file': os.path.basename(onnx_path),
        'sha256': sha256_of(onnx_path),
        'bytes': os.path.getsize(onnx_path),
        'task': 'embedder',
        'format': {'onnxIrVersion': IR_VERSION, 'opset': OPSET, 'producer': PRODUCER},
        'licence': 'as the checkpoint: MagFace code Apache-2.0 (github.com/IrvingMeng/MagFace); check the weights\' terms (trained on MS1MV2)',
        'source': {
            'repository': 'github.com/IrvingMeng/MagFace',
            'checkpoint': os.path.basename(checkpoint),
            'checkpointSha256': sha256_of(checkpoint),
            'arch': info['arch'],
            'blocksPerStage': info['layers'],
            'keyPrefix': info['keyPrefix'],
            'checkpointDtype': info['dtype'],
            'modification': 'BatchNorms folded into the following conv / final Gemm where exact; '
                            'block-input BatchNorms kept as per-channel Mul+Add; dropout removed (inference)',
        },
        'input': {
            'name': 'input',
            'dtype': 'float32',
            'layout': 'NCHW',
            'shape': ['N', 3, INPUT_SIZE, INPUT_SIZE],
            'size': [INPUT_SIZE, INPUT_SIZE],
            'colorOrder': 'BGR',
            'scale': 1 / 255,
            'mean': [0, 0, 0],
            'std': [1, 1, 1],
        },
        'alignment': {
            'method': ALIGNMENT_METHOD,
            'size': [INPUT_SIZE, INPUT_SIZE],
            'template': 'arcface-112',
            'templatePoints': ARCFACE_TEMPLATE,
        },
        'outputs': {
            'embedding': {'shape': ['N', dim], 'meaning': 'raw feature before L2 normalisation; magnitude = its L2 norm'},
            'embedding_norm': {'shape': ['N', dim], 'meaning': 'embedding * rsqrt(max(sum(embedding^2), 1e-10))'},
        },
        'rawOutput': 'embedding',
        'normalizedOutput': 'embedding_norm',
        'embeddingDim': dim,
        'quality': {
            'dropBelowMagnitude': drop,
            'magnitudeRange': [lo, hi],
            'mapping': f'quality = clamp((magnitude - {lo:g}) / ({hi:g} - {lo:g}), 0, 1)',
            'basis': calibration['basis'],
        },
        'thresholds': {'sameIdentityCosine': calibration['sameIdentityCosine']},
    }


def write_manifest(entry: dict, path: str) -> None:
    doc = {
        'schemaVersion': 1,
        'conventions': bundled_conventions(),
        'models': [entry],
    }
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(doc, f, indent=2)
        f.write('\n')


# ---------------------------------------------------------------------------------------------
# --verify-toy: the official toy faces against the official features
# ---------------------------------------------------------------------------------------------

TOY_MIN_COSINE = 0.99
TOY_MAX_MAGNITUDE_DIFF = 0.03  # relative


def read_feat_list(path: str) -> list[tuple[str, np.ndarray]]:
    rows = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            parts = line.split()
            if parts:
                rows.append((parts[0], np.array([float(v) for v in parts[1:]], dtype=np.float64)))
    return rows


def magface_tensor(image_path: str) -> np.ndarray:
    """MagFace's own preprocessing: decode, BGR, pixel/255, NCHW (the image is already aligned)."""
    from PIL import Image

    with Image.open(image_path) as img:
        rgb = np.asarray(img.convert('RGB'), dtype=np.float32)
    if rgb.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f'{image_path}: expected an aligned {INPUT_SIZE}x{INPUT_SIZE} image, got {rgb.shape[1]}x{rgb.shape[0]}')
    bgr = rgb[:, :, ::-1] / 255.0
    return np.ascontiguousarray(bgr.transpose(2, 0, 1)[None], dtype=np.float32)


def verify_toy(onnx_path: str, toy_dir: str, arch: str, out=None) -> dict | None:
    """Embeds the toy images and compares with feat.list; prints a table; returns the figures
    (None when onnxruntime/Pillow are missing: the check is skipped with a message)."""
    out = out or sys.stdout
    try:
        import onnxruntime as ort
        import PIL  # noqa: F401
    except ImportError as err:
        print(f'--verify-toy skipped: {err.name} is not installed (pip install -r tools/requirements.txt)', file=out)
        return None
    session = ort.InferenceSession(onnx_path, providers=['CPUExecutionProvider'])
    reference = read_feat_list(os.path.join(toy_dir, 'feat.list'))
    parity = arch == 'iresnet100'
    print(f'{"image":<10} {"cosine":>8} {"|f| ours":>9} {"|f| ref":>9} {"diff %":>7}  result', file=out)
    rows = []
    for ref_name, ref in reference:
        emb = session.run(['embedding'], {'input': magface_tensor(os.path.join(toy_dir, os.path.basename(ref_name)))})[0][0].astype(np.float64)
        mag, ref_mag = float(np.linalg.norm(emb)), float(np.linalg.norm(ref))
        cos = float(emb @ ref / (mag * ref_mag)) if emb.shape == ref.shape and mag > 0 else float('nan')
        diff = (mag - ref_mag) / ref_mag
        ok = cos >= TOY_MIN_COSINE and abs(diff) <= TOY_MAX_MAGNITUDE_DIFF
        rows.append({'image': os.path.basename(ref_name), 'cosine': cos, 'magnitude': mag, 'reference': ref_mag, 'pass': ok})
        verdict = ('PASS' if ok else 'FAIL') if parity else 'info'
        print(f'{os.path.basename(ref_name):<10} {cos:8.4f} {mag:9.3f} {ref_mag:9.3f} {100 * diff:7.2f}  {verdict}', file=out)
    ours = [r['magnitude'] for r in rows]
    spearman = float(np.corrcoef(np.argsort(np.argsort(ours)), np.argsort(np.argsort([r['reference'] for r in rows])))[0, 1])
    summary = {
        'images': len(rows),
        'minCosine': min(r['cosine'] for r in rows),
        'magnitudeRange': [min(ours), max(ours)],
        'spearmanVsReference': spearman,
        'passed': all(r['pass'] for r in rows) if parity else None,
    }
    if parity:
        verdict = 'PASS' if summary['passed'] else 'FAIL'
        print(f'{verdict}: {sum(r["pass"] for r in rows)}/{len(rows)} images within cosine >= {TOY_MIN_COSINE} and '
              f'magnitude within {100 * TOY_MAX_MAGNITUDE_DIFF:g}% of the official iResNet100 features', file=out)
    else:
        print(f'reference features are the official iResNet100; {arch} is not expected to match them. '
              f'Magnitude rank agreement (Spearman) {spearman:.2f}', file=out)
    return summary


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected LO,HI (two numbers), got {text!r}') from None
    if not hi > lo:
        raise argparse.ArgumentTypeError(f'expected LO < HI, got {text!r}')
    return lo, hi


def parse_layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(v) for v in text.split(','))
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected four block counts like 2,2,2,2, got {text!r}') from None
    if len(layers) != 4 or any(n < 1 for n in layers):
        raise argparse.ArgumentTypeError(f'expected four positive block counts, got {text!r}')
    return layers


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('checkpoint', help='MagFace .pth checkpoint (zip or legacy torch.save format)')
    ap.add_argument('--arch', required=True, choices=sorted(ARCH_LAYERS), help='backbone the checkpoint was trained with')
    ap.add_argument('-o', '--output', required=True, help='ONNX file to write; its manifest goes beside it')
    ap.add_argument('--name', help='model name in the manifest (default: the output file name without .onnx)')
    ap.add_argument('--drop-below', type=float, help='magnitude below which faces are dropped (default per arch)')
    ap.add_argument('--quality-range', type=parse_range, help='LO,HI magnitudes mapped to quality 0..1 (default per arch)')
    ap.add_argument('--same-identity-cosine', type=float, help='verification cosine threshold (default 0.3)')
    ap.add_argument('--verify-toy', metavar='DIR', help='MagFace toy images + feat.list: compare the export with the official features')
    ap.add_argument('--layers', type=parse_layers, help=argparse.SUPPRESS)  # reduced-depth backbones (tests)
    args = ap.parse_args(argv)

    out = os.path.abspath(args.output)
    name = args.name or Path(out).stem
    try:
        model, info = convert(args.checkpoint, args.arch, args.layers)
    except (UnsafeCheckpointError, CheckpointFormatError, ConversionError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    import onnx

    os.makedirs(os.path.dirname(out), exist_ok=True)
    onnx.save(model, out)
    calibration = dict(CUSTOM_CALIBRATION if args.layers else DEFAULT_CALIBRATION[args.arch])
    if args.drop_below is not None or args.quality_range is not None or args.same_identity_cosine is not None:
        calibration['basis'] = 'set on the command line'
    if args.drop_below is not None:
        calibration['dropBelow'] = args.drop_below
    if args.quality_range is not None:
        calibration['range'] = args.quality_range
    if args.same_identity_cosine is not None:
        calibration['sameIdentityCosine'] = args.same_identity_cosine
    entry = manifest_entry(name, out, args.checkpoint, info, calibration)
    status = 0
    if args.verify_toy:
        summary = verify_toy(out, args.verify_toy, args.arch if not args.layers else 'custom')
        if summary is not None:
            entry['measured'] = {'magfaceToy': summary}
            if summary['passed'] is False:
                status = 1
    manifest_path = os.path.join(os.path.dirname(out), f'{name}.manifest.json')
    write_manifest(entry, manifest_path)
    print(f'wrote {out} ({entry["bytes"]} bytes, {info["tensors"]} tensors, {info["arch"]} {info["layers"]}, dim {info["dim"]})')
    print(f'wrote {manifest_path} (drop below magnitude {calibration["dropBelow"]:g}, quality range {list(calibration["range"])})')
    if not os.path.exists(os.path.join(os.path.dirname(out), 'manifest.json')):
        print('note: facepipe reads a models folder through its manifest.json (with a detector); '
              f'copy one (e.g. the bundled models/manifest.json and yunet_n_dynamic.onnx) into {os.path.dirname(out)}')
    return status


if __name__ == '__main__':
    sys.exit(main())
