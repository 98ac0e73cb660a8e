import { describe, expect, it } from 'vitest';
import {
  decodeYunet,
  iou,
  nms,
  overlapOfSmaller,
  padTo,
  suppressContained,
  toOriginal,
  type Detection,
} from './detect.ts';

function det(box: Detection['box'], score: number): Detection {
  return {
    box,
    score,
    landmarks: [
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
      [0, 0],
    ],
  };
}

describe('YuNet decoding', () => {
  it('uses the cell top-left as anchor, score = cls*obj, and exp sizes', () => {
    // one stride-8 output on a 32×16 input: cols = 4, rows = 2, cell 6 = row 1, col 2
    const cells = 8;
    const cls = new Float32Array(cells);
    const obj = new Float32Array(cells);
    const bbox = new Float32Array(cells * 4);
    const kps = new Float32Array(cells * 10);
    cls[6] = 0.9;
    obj[6] = 0.8;
    bbox.set([0.5, 0.25, Math.log(2), Math.log(3)], 6 * 4);
    kps.set([0, 0, 1, 0, 0.5, 0.5, 0, 1, 1, 1], 6 * 10);
    cls[1] = 0.5;
    obj[1] = 0.5; // score 0.25: below the threshold
    const outputs = {
      cls_8: { data: cls },
      obj_8: { data: obj },
      bbox_8: { data: bbox },
      kps_8: { data: kps },
    };
    const found = decodeYunet(outputs, 32, 16, [8], { scoreThreshold: 0.5, nmsIou: 0.45 });
    expect(found).toHaveLength(1);
    const d = found[0]!;
    expect(d.score).toBeCloseTo(0.72, 6);
    // anchor (16, 8); centre (16 + 4, 8 + 2); size (16, 24)
    expect(d.box.map((v) => +v.toFixed(4))).toEqual([12, -2, 28, 22]);
    expect(d.landmarks).toEqual([
      [16, 8],
      [24, 8],
      [20, 12],
      [16, 16],
      [24, 16],
    ]);
  });

  it('NMS keeps the best of overlapping boxes and separate boxes', () => {
    const a = det([0, 0, 10, 10], 0.9);
    const b = det([1, 1, 11, 11], 0.8); // IoU ≈ 0.68 with a
    const c = det([20, 20, 30, 30], 0.7);
    expect(iou(a.box, b.box)).toBeGreaterThan(0.45);
    expect(nms([a, b, c], 0.45)).toEqual([a, c]);
  });

  it('pads to multiples of 32 and maps a downscaled detection back to the original', () => {
    expect(padTo(1366, 32)).toBe(1376);
    expect(padTo(768, 32)).toBe(768);
    const d: Detection = {
      box: [10, 20, 60, 80],
      score: 0.9,
      landmarks: [
        [49.5, 49.5],
        [0, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ],
    };
    const g = toOriginal(d, 0.5, 0.5, 1000, 1000);
    expect(g.bbox).toEqual([20, 40, 100, 120]);
    expect(g.landmarks[0]).toEqual([99.5, 99.5]); // pixel centres: (49.5 + 0.5) / 0.5 − 0.5
    expect(toOriginal(det([-5, -5, 20, 20], 1), 1, 1, 10, 10).bbox).toEqual([0, 0, 10, 10]);
  });
});

describe('one box per face', () => {
  it('drops a box lying inside a higher-scored one (a chin, a tight box on a face), keeps neighbours', () => {
    const face = det([100, 100, 200, 220], 0.9);
    const chin = det([130, 180, 170, 215], 0.6); // IoU with the face ≈ 0.12: greedy IoU NMS keeps it
    const neighbour = det([210, 100, 300, 210], 0.8);
    expect(nms([face, chin, neighbour], 0.45)).toHaveLength(3);
    expect(overlapOfSmaller(face.box, chin.box)).toBe(1);
    expect(suppressContained([face, chin, neighbour], 0.5)).toEqual([face, neighbour]);
    expect(suppressContained([face, chin, neighbour], 1)).toHaveLength(3);
  });
});
