/**
 * YuNet output decoding (see models/README.md): for each stride s, cell i has anchor
 * (col*s, row*s) — the cell's top-left, no half-cell offset; score = cls*obj; box centre
 * anchor + (dx, dy)*s, size exp(log_w, log_h)*s; landmark k = anchor + kps[2k..2k+1]*s.
 * Then a score threshold and greedy NMS by IoU. Pure functions.
 */

export type Point = [number, number];

export interface Detection {
  /** [x1, y1, x2, y2] in detector-input pixels */
  box: [number, number, number, number];
  landmarks: Point[];
  score: number;
}

export interface DetectOptions {
  scoreThreshold: number;
  nmsIou: number;
  /** keep at most this many candidates (by score) before NMS */
  topK?: number;
}

/** Raw detector outputs by name, e.g. cls_8, obj_8, bbox_8, kps_8, …; batch size 1. */
export type YunetOutputs = Record<string, { data: ArrayLike<number> }>;

export function padTo(n: number, multiple: number): number {
  return Math.ceil(n / multiple) * multiple;
}

function output(outputs: YunetOutputs, name: string): ArrayLike<number> {
  const t = outputs[name];
  if (!t) throw new Error(`detector output "${name}" missing (got ${Object.keys(outputs).join(', ')})`);
  return t.data;
}

export function decodeYunet(
  outputs: YunetOutputs,
  inputWidth: number,
  inputHeight: number,
  strides: readonly number[],
  opts: DetectOptions,
): Detection[] {
  const candidates: Detection[] = [];
  for (const s of strides) {
    const cols = Math.floor(inputWidth / s);
    const rows = Math.floor(inputHeight / s);
    const cls = output(outputs, `cls_${s}`);
    const obj = output(outputs, `obj_${s}`);
    const bbox = output(outputs, `bbox_${s}`);
    const kps = output(outputs, `kps_${s}`);
    const cells = rows * cols;
    for (let i = 0; i < cells; i++) {
      const score = cls[i]! * obj[i]!;
      if (!(score >= opts.scoreThreshold)) continue;
      const ax = (i % cols) * s;
      const ay = Math.floor(i / cols) * s;
      const cx = ax + bbox[i * 4]! * s;
      const cy = ay + bbox[i * 4 + 1]! * s;
      const w = Math.exp(bbox[i * 4 + 2]!) * s;
      const h = Math.exp(bbox[i * 4 + 3]!) * s;
      const landmarks: Point[] = [];
      for (let k = 0; k < 5; k++)
        landmarks.push([ax + kps[i * 10 + 2 * k]! * s, ay + kps[i * 10 + 2 * k + 1]! * s]);
      candidates.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], landmarks, score });
    }
  }
  candidates.sort((p, q) => q.score - p.score);
  return nms(candidates.slice(0, opts.topK ?? 5000), opts.nmsIou);
}

export function iou(p: Detection['box'], q: Detection['box']): number {
  const ix = Math.max(0, Math.min(p[2], q[2]) - Math.max(p[0], q[0]));
  const iy = Math.max(0, Math.min(p[3], q[3]) - Math.max(p[1], q[1]));
  const inter = ix * iy;
  const union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** Greedy NMS: highest score first, drop any box overlapping a kept one by more than `threshold`. */
export function nms(sortedByScore: readonly Detection[], threshold: number): Detection[] {
  const kept: Detection[] = [];
  for (const d of sortedByScore) {
    if (kept.every((k) => iou(k.box, d.box) <= threshold)) kept.push(d);
  }
  return kept;
}

/** Share of the smaller box's area that two boxes overlap (1 = one lies inside the other). */
export function overlapOfSmaller(p: Detection['box'], q: Detection['box']): number {
  const ix = Math.max(0, Math.min(p[2], q[2]) - Math.max(p[0], q[0]));
  const iy = Math.max(0, Math.min(p[3], q[3]) - Math.max(p[1], q[1]));
  const small = Math.min((p[2] - p[0]) * (p[3] - p[1]), (q[2] - q[0]) * (q[3] - q[1]));
  return small > 0 ? (ix * iy) / small : 0;
}

/**
 * One face, one box: IoU-based NMS keeps a small box lying inside a bigger one (a face's chin or
 * eye region scored as a face of its own, or a tight and a loose box on one face), since their IoU
 * is low. A box whose overlap covers more than `containment` of the smaller box's area is dropped
 * in favour of the higher-scored one (manifest `thresholds.nmsContainment`; ≥ 1 turns it off).
 */
export function suppressContained(sortedByScore: readonly Detection[], containment: number): Detection[] {
  if (containment >= 1) return [...sortedByScore];
  const kept: Detection[] = [];
  for (const d of sortedByScore) {
    if (kept.every((k) => overlapOfSmaller(k.box, d.box) <= containment)) kept.push(d);
  }
  return kept;
}

export interface FaceGeometry {
  /** [x, y, w, h] in original-image pixels, clipped to the image */
  bbox: [number, number, number, number];
  landmarks: Point[];
  score: number;
}

/**
 * Maps a detection on a resized copy (`sx`, `sy` = copy size / original size) back to the
 * original image: pixel centres map as (x' + 0.5) / s − 0.5, box edges as x' / s.
 */
export function toOriginal(
  d: Detection,
  sx: number,
  sy: number,
  width: number,
  height: number,
): FaceGeometry {
  const x1 = Math.max(0, Math.min(width, d.box[0] / sx));
  const y1 = Math.max(0, Math.min(height, d.box[1] / sy));
  const x2 = Math.max(0, Math.min(width, d.box[2] / sx));
  const y2 = Math.max(0, Math.min(height, d.box[3] / sy));
  const landmarks = d.landmarks.map(([x, y]): Point =>
    sx === 1 && sy === 1 ? [x, y] : [(x + 0.5) / sx - 0.5, (y + 0.5) / sy - 0.5],
  );
  return { bbox: [x1, y1, x2 - x1, y2 - y1], landmarks, score: d.score };
}
