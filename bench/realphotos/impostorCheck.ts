import type { LabelledCollection } from '../../clustering/calibration.ts';
import { bestImpostorQuantile, type ClusterParams } from '../../clustering/params.ts';
import { dot } from '../../clustering/vec.ts';
import { quantile } from '../../core/stats.ts';
import { identityOwners, identityTemplates } from './leftovers.ts';

/**
 * Does the model of the attach bar hold on a collection? The bar assumes that a face's best cosine
 * to the templates of N identities of other people is the best of N normal draws with the
 * manifest's impostor mean and sd. Here, for every labelled face, the best cosine to an identity
 * whose faces are mostly someone else, against what the model predicts for that many identities:
 * the median and the 90th percentile; beside it what a normal with the whole distribution's mean
 * and sd predicts (`wholeDistribution`), which the manifest carried before the fit read the tail.
 */
export interface ImpostorCheck {
  folder: string;
  identities: number;
  faces: number;
  observed: { p50: number; p90: number };
  predicted: { p50: number; p90: number };
  predictedByWholeDistribution?: { p50: number; p90: number };
}

export function impostorCheck(
  c: LabelledCollection,
  labels: Int32Array,
  params: Pick<ClusterParams, 'impostorCosineMean' | 'impostorCosineSd'>,
  wholeDistribution?: Pick<ClusterParams, 'impostorCosineMean' | 'impostorCosineSd'>,
): ImpostorCheck {
  const templates = identityTemplates(c, labels);
  const truthOf = new Map<number, string>();
  c.largest.forEach((i, p) => {
    if (i >= 0) truthOf.set(i, c.truth[p]!);
  });
  const owner = identityOwners(labels, truthOf);
  const best: number[] = [];
  for (const [i, person] of truthOf) {
    let top = -Infinity;
    for (const [l, t] of templates) {
      const o = owner.get(l);
      if (o === undefined || o === person) continue;
      top = Math.max(top, dot(c.faces[i]!.unit, t));
    }
    if (top > -Infinity) best.push(top);
  }
  best.sort((a, b) => a - b);
  const n = templates.size;
  const predict = (model: Pick<ClusterParams, 'impostorCosineMean' | 'impostorCosineSd'>) => {
    const at = (q: number) => round3(bestImpostorQuantile(model, 1 - q, n));
    return { p50: at(0.5), p90: at(0.9) };
  };
  return {
    folder: c.name,
    identities: n,
    faces: best.length,
    observed: { p50: round3(quantile(best, 0.5)), p90: round3(quantile(best, 0.9)) },
    predicted: predict(params),
    ...(wholeDistribution ? { predictedByWholeDistribution: predict(wholeDistribution) } : {}),
  };
}

const round3 = (x: number) => Math.round(x * 1e3) / 1e3;
