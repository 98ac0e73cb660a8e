import { describe, expect, it } from 'vitest';
import { generateSynthetic } from './synthetic.ts';
import { buildCoreGraph, clusterBatch, clusterBatchParallel } from './batch.ts';
import { evaluate } from './metrics.ts';
import { graphFromTable, parallelNeighbours } from './parallelKnn.ts';
import { clusterParamsFromManifest } from './params.ts';
import { testEmbedderManifest } from './testUtil.ts';
import { loadKnnKernel } from './hnswlibBuild.mjs';

const params = clusterParamsFromManifest(testEmbedderManifest());

describe('parallel kNN search for batch clustering', () => {
  const set = generateSynthetic({ seed: 3, identities: 60, lowQualityShare: 0.2 });
  const faces = set.faces;
  const all = Int32Array.from(faces.keys());

  /** the neighbour table of the core faces on one thread, with the portable or the tuned hnswlib */
  async function coreTable(portable: boolean) {
    const serial = buildCoreGraph(faces, params).graph;
    const table = await parallelNeighbours(
      faces,
      serial.nodes,
      serial.nodes,
      params.k + 1,
      { ...params, ef: Math.max(params.ef, 2 * params.k) },
      1,
      { portable },
    );
    return { serial, table };
  }

  it('with one thread gives exactly the single-index graph of buildKnnGraph (same portable hnswlib)', async () => {
    const { serial, table } = await coreTable(true);
    const graph = graphFromTable(table, serial.nodes, params.k);
    expect(graph.deg).toEqual(serial.deg);
    expect(graph.nbr).toEqual(serial.nbr);
    expect(graph.sim).toEqual(serial.sim);
  });

  it('finds the same neighbours with the x86-64-v3 hnswlib build when there is one (≥ 99% overlap)', async () => {
    const portable = (await coreTable(true)).table;
    const tuned = (await coreTable(false)).table;
    let same = 0;
    let total = 0;
    for (let q = 0; q < portable.labels.length; q += portable.k) {
      const a = new Set(portable.labels.subarray(q, q + portable.k));
      for (const j of tuned.labels.subarray(q, q + tuned.k)) {
        if (j < 0) continue;
        total++;
        if (a.has(j)) same++;
      }
    }
    expect(same / total).toBeGreaterThanOrEqual(0.99);
  });

  it('the native kernel on one thread is exactly the single tuned index; without the kernel, the shards run', async () => {
    const opts = { ...params, ef: Math.max(params.ef, 2 * params.k) };
    const kernel = await parallelNeighbours(faces, all, all, params.k + 1, opts, 1);
    const shards = await parallelNeighbours(faces, all, all, params.k + 1, opts, 1, { engine: 'shards' });
    expect(shards.engine).toBe('shards');
    if (loadKnnKernel().kernel) {
      expect(kernel).toMatchObject({ engine: 'kernel', hnswlib: 'x86-64-v3' });
      expect(kernel.labels).toEqual(shards.labels);
      expect(kernel.cos).toEqual(shards.cos);
    } else {
      // no kernel here (portable machine): the default is the shard path, the same table
      expect(kernel.engine).toBe('shards');
      expect(loadKnnKernel().reason).toMatch(/missing|lacks|not an x86-64|does not load/);
      expect(kernel.labels).toEqual(shards.labels);
    }
    // the portable build never takes the kernel
    expect((await parallelNeighbours(faces, all, all, 5, opts, 2, { portable: true })).engine).toBe('shards');
  });

  it.each(['shards', 'kernel'] as const)(
    'in several threads (engine %s; the kernel only where built) finds the exact nearest neighbours (recall ≥ 0.98)',
    async (engine) => {
      await nearestNeighbourRecall(engine);
    },
  );

  async function nearestNeighbourRecall(engine: 'shards' | 'kernel') {
    const k = 10;
    const table = await parallelNeighbours(faces, all, all, k, { ...params, ef: 64 }, 3, { engine });
    let hits = 0;
    for (const q of all) {
      const exact = [...all]
        .map((j) => ({ j, c: dot(faces[q]!.unit, faces[j]!.unit) }))
        .sort((a, b) => b.c - a.c || a.j - b.j)
        .slice(0, k)
        .map((x) => x.j);
      const found = new Set(table.labels.subarray(q * k, (q + 1) * k));
      hits += exact.filter((j) => found.has(j)).length;
      // best first: cosines never increase along a row
      for (let t = q * k + 1; t < (q + 1) * k; t++)
        expect(table.cos[t]!).toBeLessThanOrEqual(table.cos[t - 1]!);
    }
    expect(hits / (all.length * k)).toBeGreaterThanOrEqual(0.98);
  }

  it('clusters like clusterBatch: the same labels with one thread, BCubed within 0.01 with two', async () => {
    const serial = clusterBatch(faces, params);
    const one = await clusterBatchParallel(faces, params, { threads: 1 });
    expect(one.labels).toEqual(serial.labels);
    const two = await clusterBatchParallel(faces, params, { threads: 2 });
    const f = (labels: Int32Array) => evaluate(set.truth, labels).bcubed.f;
    expect(Math.abs(f(two.labels) - f(serial.labels))).toBeLessThanOrEqual(0.01);
    expect(evaluate(serial.labels, two.labels).bcubed.f).toBeGreaterThanOrEqual(0.98);
  });
});

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
