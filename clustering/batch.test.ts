import { describe, expect, it } from 'vitest';
import { clusterBatch } from './batch.ts';
import { buildKnnGraph } from './knnGraph.ts';
import { singleLinkage } from './baselines.ts';
import { evaluate } from './metrics.ts';
import { clusterParamsFromManifest, qualityOf } from './params.ts';
import { linkScore } from './linkScore.ts';
import {
  groupPhotoFaces,
  referenceCrops,
  testEmbedderManifest,
  uncalibratedEmbedderManifest,
} from './testUtil.ts';
import type { ClusterFace } from './types.ts';
import { generateSynthetic } from './synthetic.ts';

const params = clusterParamsFromManifest(uncalibratedEmbedderManifest(), { k: 8 });
const [lo, hi] = params.qualityRange;
const GOOD = lo + 0.9 * (hi - lo);
const POOR = lo + 0.1 * (hi - lo);
const DIM = 16;

function axis(i: number): number[] {
  return Array.from({ length: DIM }, (_, j) => (j === i ? 1 : 0));
}

function face(id: string, dir: number[], magnitude: number): ClusterFace {
  const n = Math.hypot(...dir);
  return {
    id,
    unit: Float32Array.from(dir, (x) => x / n),
    magnitude,
    quality: qualityOf(magnitude, params.qualityRange),
  };
}

/** 4 good faces around axis `centre`, each nudged along its own private axis */
function identity(name: string, centre: number, privateAxis: number): ClusterFace[] {
  return [0, 1, 2, 3].map((i) =>
    face(
      `${name}${i}`,
      axis(centre).map((x, j) => x + (j === privateAxis + i ? 0.3 : 0)),
      GOOD,
    ),
  );
}

function mix(a: number, b: number, t: number): number[] {
  return axis(a).map((x, j) => (1 - t) * x + t * axis(b)[j]);
}

describe('link score', () => {
  it('asks more cosine of a link the weaker its worse end', () => {
    const good = linkScore(0.5, 1, 1, params);
    const poor = linkScore(0.5, 1, 0.1, params);
    expect(good).toBeCloseTo(0.5 - params.linkThreshold, 12);
    expect(poor).toBeLessThan(good);
    expect(linkScore(0.5, 0.1, 1, params)).toBe(poor);
  });

  it('takes its parameters from the manifest', () => {
    const m = uncalibratedEmbedderManifest();
    expect(params.linkThreshold).toBe(m.thresholds?.sameIdentityCosine);
    expect(params.qualityRange).toEqual(m.quality.magnitudeRange);
    expect(params.dropBelowMagnitude).toBe(m.quality.dropBelowMagnitude);
  });

  it("takes the calibrated operating point from the manifest's clustering block when there is one", () => {
    const shipped = testEmbedderManifest();
    expect(shipped.clustering).toBeDefined();
    expect(clusterParamsFromManifest(shipped)).toMatchObject(shipped.clustering!);
  });
});

describe('batch clustering: no-bridge rules', () => {
  const A = identity('a', 0, 4);
  const B = identity('b', 1, 8);

  it('a low-quality face between two identities does not merge them', () => {
    const bridge = face('low', mix(0, 1, 0.5), POOR);
    const faces = [...A, ...B, bridge];
    const { labels } = clusterBatch(faces, params);
    expect(new Set(labels.slice(0, 4)).size).toBe(1);
    expect(new Set(labels.slice(4, 8)).size).toBe(1);
    expect(labels[0]).not.toBe(labels[4]);
    expect(labels[0]).toBeGreaterThanOrEqual(0);
    expect(labels[8]).toBe(-1); // equally close to both: left unassigned
    // the same data under plain threshold + connected components does merge them
    const { graph } = buildKnnGraph(faces, 8, params);
    const single = singleLinkage(faces.length, graph, params.linkThreshold).labels;
    expect(single[0]).toBe(single[4]);
  });

  it('a chain of low-quality faces does not join two clusters', () => {
    const chain = [0.2, 0.35, 0.5, 0.65, 0.8].map((t, i) => face(`c${i}`, mix(0, 1, t), POOR));
    const faces = [...A, ...B, ...chain];
    const { labels } = clusterBatch(faces, params);
    expect(labels[0]).not.toBe(labels[4]);
    expect(new Set(labels.slice(0, 4)).size).toBe(1);
    expect(new Set(labels.slice(4, 8)).size).toBe(1);
    // chain faces near A may join A, near B may join B, never anything else
    for (let i = 8; i < faces.length; i++) expect([-1, labels[0], labels[4]]).toContain(labels[i]);
    const { graph } = buildKnnGraph(faces, 8, params);
    const single = singleLinkage(faces.length, graph, params.linkThreshold).labels;
    expect(single[0]).toBe(single[4]);
  });

  it('a low-quality face joins the identity it clearly belongs to', () => {
    const member = face(
      'lowA',
      axis(0).map((x, j) => x + (j === 15 ? 0.5 : 0)),
      POOR,
    );
    const { labels } = clusterBatch([...A, ...B, member], params);
    expect(labels[8]).toBe(labels[0]);
  });

  it('low-quality faces alone never form an identity', () => {
    const poor = [0, 1, 2, 3].map((i) =>
      face(
        `p${i}`,
        axis(2).map((x, j) => x + (j === 4 + i ? 0.2 : 0)),
        POOR,
      ),
    );
    const { labels, clusters } = clusterBatch(poor, params);
    expect(clusters).toBe(0);
    expect([...labels]).toEqual([-1, -1, -1, -1]);
  });

  it('faces below the magnitude gate are dropped', () => {
    const dropped = face('gone', axis(0), params.dropBelowMagnitude - 1);
    const { labels } = clusterBatch([...A, dropped], params);
    expect(labels[4]).toBe(-1);
    expect(labels[0]).toBeGreaterThanOrEqual(0);
  });

  it('cannot-link constraints keep two identities apart even with strong links', () => {
    const twin = identity('t', 0, 12); // same centre as A
    const faces = [...A, ...twin];
    expect(new Set(clusterBatch(faces, params).labels).size).toBe(1);
    const anchorOf = (i: number) => (i === 0 ? 'idA' : i === 4 ? 'idT' : undefined);
    const cannotLink = (x: string, y: string) => [x, y].sort().join() === 'idA,idT';
    const { labels } = clusterBatch(faces, params, { constraints: { anchorOf, cannotLink } });
    expect(labels[0]).not.toBe(labels[4]);
  });
});

describe('batch clustering: two faces of one photo are two people', () => {
  /** the faces, each from its own photo unless `shared` names the faces that come from photo P */
  const inPhotos = (faces: ClusterFace[], shared: string[]): ClusterFace[] =>
    faces.map((f) => ({ ...f, photoId: shared.includes(f.id) ? 'P' : `photo-${f.id}` }));
  const A = identity('a', 0, 4);
  const B = identity('b', 1, 8);
  const ruleOff = { ...params, samePhotoCannotLink: false };

  it('two groups holding faces of one photo never merge, however close', () => {
    const twin = identity('t', 0, 12); // same centre as A
    const faces = inPhotos([...A, ...twin], ['a0', 't0']);
    const { labels } = clusterBatch(faces, params);
    // one of the two may be left out (alone, it cannot join the only identity), never both in one
    expect(labels[0]).not.toBe(labels[4]);
    expect(Math.max(labels[0], labels[4])).toBeGreaterThanOrEqual(0);
    expect([...labels].filter((l) => l < 0).length).toBeLessThanOrEqual(1); // the others find a cluster
    // the rule is configurable: off, the same faces form one identity
    expect(new Set(clusterBatch(faces, ruleOff).labels).size).toBe(1);
  });

  it('a low-quality face skips an identity holding a face of its photo and takes its best allowed one', () => {
    const low = face(
      'low',
      axis(0).map((x, j) => 0.8 * x + (j === 1 ? 0.6 : 0)),
      POOR,
    ); // nearer A than B
    const faces = inPhotos([...A, ...B, low], ['a0', 'low']);
    const off = clusterBatch(faces, ruleOff).labels;
    expect(off[8]).toBe(off[0]);
    const on = clusterBatch(faces, params).labels;
    expect(on[0]).not.toBe(on[4]);
    expect(on[8]).toBe(on[4]);
  });

  it('a low-quality face with no allowed identity stays unassigned', () => {
    const low = face(
      'low',
      axis(0).map((x, j) => x + (j === 15 ? 0.5 : 0)),
      POOR,
    );
    const faces = inPhotos([...A, ...B, low], ['a0', 'low']);
    expect(clusterBatch(faces, ruleOff).labels[8]).toBe(clusterBatch(faces, ruleOff).labels[0]);
    expect(clusterBatch(faces, params).labels[8]).toBe(-1);
  });

  it('of two low-quality faces of one photo aiming at one identity, the closer joins it', () => {
    const near = face(
      'near',
      axis(0).map((x, j) => x + (j === 15 ? 0.3 : 0)),
      POOR,
    );
    const far = face(
      'far',
      axis(0).map((x, j) => x + (j === 14 ? 0.6 : 0)),
      POOR,
    );
    const faces = inPhotos([...A, far, near], ['far', 'near']);
    const off = clusterBatch(faces, ruleOff).labels;
    expect([off[4], off[5]]).toEqual([off[0], off[0]]);
    const on = clusterBatch(faces, params).labels;
    expect(on[5]).toBe(on[0]);
    expect(on[4]).toBe(-1);
  });

  it('real group photos: no cluster holds two faces of one photo, every face is with its person', () => {
    const crops = referenceCrops(params.qualityRange);
    const groups = groupPhotoFaces(params.qualityRange);
    const faces = [...crops.faces.map((f) => ({ ...f, photoId: f.id })), ...groups.faces];
    const truth = [...crops.truth, ...groups.truth];
    const { labels } = clusterBatch(faces, clusterParamsFromManifest(uncalibratedEmbedderManifest()));
    const seen = new Set<string>();
    faces.forEach((f, i) => {
      if (labels[i] < 0) return;
      const key = `${labels[i]} ${f.photoId}`;
      expect(seen.has(key)).toBe(false);
      seen.add(key);
    });
    groups.faces.forEach((_, g) => {
      const i = crops.faces.length + g;
      expect(labels[i]).toBe(labels[truth.indexOf(truth[i])]); // the label of its person's first crop
    });
  });
});

describe('batch clustering on data', () => {
  it('is deterministic for the same input and seed', () => {
    const set = generateSynthetic({ seed: 5, identities: 60, lowQualityShare: 0.3, dim: 64 });
    const a = clusterBatch(set.faces, params);
    const b = clusterBatch(set.faces, params);
    expect([...a.labels]).toEqual([...b.labels]);
    expect(a.clusters).toBeGreaterThan(10);
  });

  it('recovers the 8 identities of the 40 real crops (BCubed F ≥ 0.9)', () => {
    const { faces, truth } = referenceCrops(params.qualityRange);
    const e = evaluate(
      truth,
      clusterBatch(faces, clusterParamsFromManifest(uncalibratedEmbedderManifest())).labels,
    );
    expect(e.bcubed.f).toBeGreaterThanOrEqual(0.9);
    expect(e.clusters).toBe(8);
  });
});
