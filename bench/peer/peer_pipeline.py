"""The plain Python pipeline a practitioner would write, as facepipe's analysis peer.

OpenCV decode, the same YuNet and MobileFaceNet ONNX models on onnxruntime (its default threads),
the models' preprocessing contract (models/README.md, "Preprocessing contract"; tensor layout and
thresholds read from models/manifest.json): EXIF orientation applied (cv2.imread does it), an
embedded ICC profile converted to sRGB (Pillow's ImageCms, perceptual intent), the detection copy
halved by 2x2 block means while at least twice its size, then area-averaged (cv2.INTER_AREA) to
the same detection resolution (long side at most --detect-max-side), NMS then one box per face (containment), cv2.estimateAffinePartial2D onto the
template, a large face pre-shrunk by its block mean, warpAffine (bilinear, outside = 0), one photo
at a time. One JSON line per face on stdout: photo, bbox [x, y, w, h], landmarks, score, embedding.

Usage: peer_pipeline.py --models DIR [--detect-max-side 1600] FILE...
"""

import argparse
import io
import json
import os
import sys

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image, ImageCms

SRGB = ImageCms.createProfile("sRGB")


def decode(path):
    """BGR uint8, EXIF-oriented, in sRGB: an embedded ICC profile is applied (cv2 ignores it)."""
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        return None
    with Image.open(path) as im:
        icc = im.info.get("icc_profile")
    if icc:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        rgb = Image.fromarray(np.ascontiguousarray(image[:, :, ::-1]))
        rgb = ImageCms.profileToProfile(rgb, profile, SRGB, renderingIntent=ImageCms.Intent.PERCEPTUAL)
        image = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
    return image


def contained(faces, share):
    """One box per face: drop a box whose overlap covers more than `share` of the smaller box."""
    if share >= 1:
        return faces
    kept = []
    for face in faces:
        b = face[0]
        ok = True
        for other in kept:
            k = other[0]
            iw = max(0.0, min(b[2], k[2]) - max(b[0], k[0]))
            ih = max(0.0, min(b[3], k[3]) - max(b[1], k[1]))
            smaller = min((b[2] - b[0]) * (b[3] - b[1]), (k[2] - k[0]) * (k[3] - k[1]))
            if smaller > 0 and iw * ih / smaller > share:
                ok = False
                break
        if ok:
            kept.append(face)
    return kept


def align(image, m, size):
    """warpAffine onto the template; a face the warp shrinks 2x or more is first reduced by
    k = floor(1 / scale) to the mean of each k x k block (blocks anchored at the image's top-left,
    rounded half up, partial blocks at the right/bottom edge left out)."""
    k = int(np.floor(1 / np.hypot(m[0, 0], m[1, 0])))
    if k < 2:
        return cv2.warpAffine(image, m, size, flags=cv2.INTER_LINEAR, borderValue=0)
    c = (k - 1) / 2
    mk = m @ np.array([[k, 0, c], [0, k, c], [0, 0, 1]])  # block pixel p -> source pixel k*p + c
    # the blocks the warp samples: its window in block pixels, widened for the bilinear neighbour
    inv = cv2.invertAffineTransform(mk)
    corners = np.array([[0, 0, 1], [size[0] - 1, 0, 1], [0, size[1] - 1, 1], [size[0] - 1, size[1] - 1, 1]])
    pts = corners @ inv.T
    h, w = image.shape[:2]
    x0 = max(int(np.floor(pts[:, 0].min())) - 1, 0)
    y0 = max(int(np.floor(pts[:, 1].min())) - 1, 0)
    x1 = min(int(np.ceil(pts[:, 0].max())) + 2, w // k)
    y1 = min(int(np.ceil(pts[:, 1].max())) + 2, h // k)
    if x1 <= x0 or y1 <= y0:
        return np.zeros((size[1], size[0], 3), np.uint8)
    window = image[y0 * k : y1 * k, x0 * k : x1 * k].astype(np.int32)
    sums = window.reshape(y1 - y0, k, x1 - x0, k, 3).sum(axis=(1, 3))
    blocks = ((sums + k * k // 2) // (k * k)).astype(np.uint8)
    mk[:, 2] += mk[:, 0] * x0 + mk[:, 1] * y0
    return cv2.warpAffine(blocks, mk, size, flags=cv2.INTER_LINEAR, borderValue=0)


def load_models(models_dir):
    with open(os.path.join(models_dir, "manifest.json")) as f:
        models = json.load(f)["models"]
    detector = next(m for m in models if m["task"] == "detector")
    embedder = next(m for m in models if m["task"] == "embedder")
    return detector, embedder


def to_tensor(image_bgr, contract, pad_to=1):
    """(pixel * scale - mean[c]) / std[c] in the contract's colour order, NCHW, zero padding."""
    img = image_bgr if contract["colorOrder"] == "BGR" else image_bgr[:, :, ::-1]
    h, w = img.shape[:2]
    ph, pw = -(-h // pad_to) * pad_to, -(-w // pad_to) * pad_to
    scale = np.float32(contract["scale"])
    mean = np.asarray(contract["mean"], np.float32)
    std = np.asarray(contract["std"], np.float32)
    blob = np.zeros((1, 3, ph, pw), np.float32)
    blob[0, :, :h, :w] = ((img.astype(np.float32) * scale - mean) / std).transpose(2, 0, 1)
    return blob


def decode_yunet(outputs, names, width, height, strides, score_threshold, nms_iou):
    out = dict(zip(names, outputs))
    boxes, scores, landmarks = [], [], []
    for s in strides:
        cols, rows = width // s, height // s
        score = (out[f"cls_{s}"][0, :, 0] * out[f"obj_{s}"][0, :, 0])
        keep = np.nonzero(score >= score_threshold)[0]
        if keep.size == 0:
            continue
        ax = (keep % cols) * s
        ay = (keep // cols) * s
        bb = out[f"bbox_{s}"][0, keep]
        kp = out[f"kps_{s}"][0, keep]
        cx, cy = ax + bb[:, 0] * s, ay + bb[:, 1] * s
        bw, bh = np.exp(bb[:, 2]) * s, np.exp(bb[:, 3]) * s
        boxes.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1))
        scores.append(score[keep])
        lm = kp.reshape(-1, 5, 2) * s
        lm[:, :, 0] += ax[:, None]
        lm[:, :, 1] += ay[:, None]
        landmarks.append(lm)
    if not boxes:
        return []
    boxes, scores, landmarks = np.concatenate(boxes), np.concatenate(scores), np.concatenate(landmarks)
    order = np.argsort(-scores, kind="stable")
    kept = []
    for i in order:
        b = boxes[i]
        ok = True
        for j in kept:
            k = boxes[j]
            iw = max(0.0, min(b[2], k[2]) - max(b[0], k[0]))
            ih = max(0.0, min(b[3], k[3]) - max(b[1], k[1]))
            inter = iw * ih
            union = (b[2] - b[0]) * (b[3] - b[1]) + (k[2] - k[0]) * (k[3] - k[1]) - inter
            if union > 0 and inter / union > nms_iou:
                ok = False
                break
        if ok:
            kept.append(i)
    return [(boxes[i], landmarks[i], float(scores[i])) for i in kept]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", required=True)
    ap.add_argument("--detect-max-side", type=int, default=1600)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    detector, embedder = load_models(args.models)
    det = ort.InferenceSession(os.path.join(args.models, detector["file"]), providers=["CPUExecutionProvider"])
    emb = ort.InferenceSession(os.path.join(args.models, embedder["file"]), providers=["CPUExecutionProvider"])
    det_names = [o.name for o in det.get_outputs()]
    template = np.asarray(embedder["alignment"]["templatePoints"], np.float32)
    size = tuple(embedder["alignment"]["size"])
    strides = detector["outputs"]["strides"]
    th = detector["thresholds"]
    out = sys.stdout
    for path in args.files:
        image = decode(path)
        if image is None:
            out.write(json.dumps({"photo": path, "error": "cannot decode"}) + "\n")
            continue
        h, w = image.shape[:2]
        long_side = max(w, h)
        small = image
        if long_side > args.detect_max_side:
            # rounded half up, as facepipe does (Python's round() rounds half to even)
            dw = max(1, int(np.floor(w * args.detect_max_side / long_side + 0.5)))
            dh = max(1, int(np.floor(h * args.detect_max_side / long_side + 0.5)))
            # halved by 2x2 block means (a partial last row/column left out) while at least twice
            # the copy, then area-averaged to it
            # (INTER_AREA at exactly 2x is that block mean, rounded half up)
            while small.shape[1] >= 2 * dw and small.shape[0] >= 2 * dh:
                hh, hw = small.shape[0] // 2, small.shape[1] // 2
                small = cv2.resize(small[: 2 * hh, : 2 * hw], (hw, hh), interpolation=cv2.INTER_AREA)
            small = cv2.resize(small, (dw, dh), interpolation=cv2.INTER_AREA)
        sh, sw = small.shape[:2]
        blob = to_tensor(small, detector["input"], detector["input"]["sizeMultiple"])
        outputs = det.run(det_names, {detector["input"]["name"]: blob})
        faces = decode_yunet(outputs, det_names, blob.shape[3], blob.shape[2], strides, th["score"], th["nmsIou"])
        faces = contained(faces, th.get("nmsContainment", 1))
        sx, sy = sw / w, sh / h
        crops, boxes, found = [], [], []
        for box, lm, score in faces:
            if sx != 1 or sy != 1:
                lm = np.stack([(lm[:, 0] + 0.5) / sx - 0.5, (lm[:, 1] + 0.5) / sy - 0.5], 1)
            # the manifest's alignment contract is the least-squares similarity over all five
            # points: RANSAC with a threshold no point can exceed keeps them all as inliers, and
            # OpenCV's refinement step then fits them all (LMEDS would drop points on turned faces)
            m, _ = cv2.estimateAffinePartial2D(
                lm.astype(np.float32), template, method=cv2.RANSAC, ransacReprojThreshold=1e6, refineIters=50
            )
            crops.append(align(image, m, size))
            x1 = min(max(box[0] / sx, 0), w)
            y1 = min(max(box[1] / sy, 0), h)
            x2 = min(max(box[2] / sx, 0), w)
            y2 = min(max(box[3] / sy, 0), h)
            boxes.append([float(x1), float(y1), float(x2 - x1), float(y2 - y1)])
            found.append((lm.tolist(), score))
        if crops:
            batch = np.concatenate([to_tensor(c, embedder["input"]) for c in crops])
            feats = emb.run([embedder["rawOutput"]], {embedder["input"]["name"]: batch})[0]
            for box, (lm, score), f in zip(boxes, found, feats):
                line = {"photo": path, "bbox": box, "landmarks": lm, "score": score}
                out.write(json.dumps({**line, "embedding": [round(float(v), 6) for v in f]}) + "\n")
    out.flush()


if __name__ == "__main__":
    main()
