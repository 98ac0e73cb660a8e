import { generateSynthetic, identitiesFor } from '/work/main/bench/synthetic.ts';
import { clusterBatch } from '/work/main/clustering/batch.ts';
import { clusterParamsFromManifest } from '/work/main/clustering/params.ts';
import { buildKnnGraph } from '/work/main/clustering/knnGraph.ts';
import { runBaseline } from '/work/main/clustering/baselines.ts';
import { evaluate } from '/work/main/clustering/metrics.ts';
import manifest from '/work/shared/models/manifest.json' with { type: 'json' };
const emb = (manifest as any).models.find((m: any) => m.task === 'embedder');
const N = Number(process.argv[2] ?? 5000);
for (const low of [0.33, 0]) {
  const set = generateSynthetic({ seed: 7, identities: identitiesFor(N), lowQualityShare: low });
  const n = set.faces.length;
  // stats
  let sameHi = 0, nsh = 0, diffLow = 0, ndl = 0;
  for (let t = 0; t < 3000; t++) { const i = (t * 7919) % n, j = (t * 104729 + 13) % n; if (i === j) continue;
    let d = 0; for (let x = 0; x < 192; x++) d += set.faces[i].unit[x] * set.faces[j].unit[x];
    if (set.truth[i] !== set.truth[j] && set.faces[i].quality < 0.2 && set.faces[j].quality < 0.2) { diffLow += d; ndl++; } }
  console.log('n', n, 'low', low, 'diff-low mean cos', (diffLow / ndl).toFixed(3), ndl);
  const base = clusterParamsFromManifest(emb);
  let t = Date.now();
  const res = [];
  for (const tau of [0.32, 0.37, 0.42, 0.47, 0.52]) {
    const p = { ...base, linkThreshold: tau, mergeThreshold: tau, lowQualityMargin: tau / 4, attachMargin: tau / 10 };
    const c = clusterBatch(set.faces, p);
    const e = evaluate(set.truth, c.labels);
    res.push(`q τ=${tau} F=${e.bcubed.f.toFixed(3)} P=${e.bcubed.p.toFixed(3)} R=${e.bcubed.r.toFixed(3)} un=${e.unassigned.toFixed(2)} cl=${e.clusters}`);
  }
  console.log(res.join('\n'), Date.now() - t, 'ms');
  const { graph } = buildKnnGraph(set.faces, base.k, base);
  for (const m of ['single', 'core', 'cw'] as const) {
    let best = { f: 0, th: 0, s: '' };
    for (let th = 0.2; th <= 0.8; th += 0.025) for (const mf of m === 'core' ? [2, 3, 5] : [3]) {
      const c = runBaseline(m, set.faces, graph, { threshold: th, minFaces: mf });
      const e = evaluate(set.truth, c.labels);
      if (e.bcubed.f > best.f) best = { f: e.bcubed.f, th, s: `mf=${mf} P=${e.bcubed.p.toFixed(3)} R=${e.bcubed.r.toFixed(3)} un=${e.unassigned.toFixed(2)}` };
    }
    console.log(m, best.f.toFixed(3), best.th.toFixed(3), best.s);
  }
}
