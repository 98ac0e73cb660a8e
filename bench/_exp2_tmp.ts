import { generateSynthetic, identitiesFor } from './synthetic.ts';
import { clusterBatch } from '../clustering/batch.ts';
import { clusterParamsFromManifest } from '../clustering/params.ts';
import { OnlineClusterer } from '../clustering/online.ts';
import { evaluate } from '../clustering/metrics.ts';
import manifest from '/work/shared/models/manifest.json' with { type: 'json' };
const emb = (manifest as any).models.find((m: any) => m.task === 'embedder');
const N = Number(process.argv[2] ?? 5000);
for (const low of [0.33, 0.1, 0]) {
  const set = generateSynthetic({ seed: 3, identities: identitiesFor(N), lowQualityShare: low });
  const p = clusterParamsFromManifest(emb);
  let t = Date.now();
  const b = clusterBatch(set.faces, p);
  const tb = Date.now() - t; t = Date.now();
  const o = new OnlineClusterer(p, 192);
  for (const f of set.faces) o.add(f);
  const ol = o.labels(set.faces.map((f) => f.id));
  const to = Date.now() - t;
  const eb = evaluate(set.truth, b.labels), eo = evaluate(set.truth, ol), ob = evaluate(b.labels, ol);
  console.log(`low=${low} n=${set.faces.length} batch F=${eb.bcubed.f.toFixed(3)} online F=${eo.bcubed.f.toFixed(3)} online-vs-batch F=${ob.bcubed.f.toFixed(3)} P=${ob.bcubed.p.toFixed(3)} R=${ob.bcubed.r.toFixed(3)} un b=${eb.unassigned.toFixed(3)} o=${eo.unassigned.toFixed(3)} ${tb}ms ${to}ms`);
}
