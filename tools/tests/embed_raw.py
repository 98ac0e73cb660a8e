#!/usr/bin/env python3
"""Embeds one raw interleaved RGB image (uint8, W×H×3) with an exported model using MagFace's own
preprocessing (BGR, pixel/255, NCHW) and prints the raw embedding as JSON. With --rgb the channels
are NOT swapped: the wrong contract, for tests that must tell the two apart.

    python3 tools/tests/embed_raw.py MODEL.onnx face.rgb 112 112 [--rgb]
"""

import argparse
import json

import numpy as np
import onnxruntime as ort


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument('model')
    ap.add_argument('raw')
    ap.add_argument('width', type=int)
    ap.add_argument('height', type=int)
    ap.add_argument('--rgb', action='store_true')
    args = ap.parse_args()
    rgb = np.fromfile(args.raw, dtype=np.uint8).reshape(args.height, args.width, 3).astype(np.float32)
    pixels = rgb if args.rgb else rgb[:, :, ::-1]
    x = np.ascontiguousarray((pixels / 255.0).transpose(2, 0, 1)[None], dtype=np.float32)
    session = ort.InferenceSession(args.model, providers=['CPUExecutionProvider'])
    embedding = session.run(['embedding'], {'input': x})[0][0]
    print(json.dumps([float(v) for v in embedding]))


if __name__ == '__main__':
    main()
