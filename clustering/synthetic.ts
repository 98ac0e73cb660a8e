import type { ClusterFace } from './types.ts';
import { qualityOf } from './params.ts';
import { rng } from '../core/random.ts';

/**
 * # Synthetic MagFace-like embeddings
 *
 * Model (every number below is a knob of `SyntheticOptions`):
 * - **Identities**: `identities` centres μ drawn uniformly on the unit sphere in `dim` dimensions
 *   (random centres are nearly orthogonal: cos ≈ 0 ± 1/√dim).
 * - **Near-identical pairs**: a share `twinShare` of identities gets a "twin" whose centre has cosine
 *   `twinCosine` with it (siblings / look-alikes).
 * - **Long tail**: faces per identity follow a Pareto law, `minFaces · U^(−1/tailAlpha)`, capped at
 *   `maxFaces` (a few people appear very often, most rarely).
 * - **Distractors**: `distractorShare` of all faces are people seen exactly once (own centre).
 * - **Quality**: with probability `lowQualityShare` a face is degraded, q ~ U(lowQualityRange);
 *   otherwise q ~ U(highQualityRange).
 * - **Magnitude rises with quality**: a = lo + q·(hi − lo) + N(0, magnitudeNoise), [lo, hi] =
 *   `qualityRange` (the manifest's calibration range); the clustering only sees a (its quality is
 *   recomputed from a, so it is a noisy estimate of q, as with a real model).
 * - **Angular spread falls with quality**: the face lies at angle θ(q) = θ₁·q + θ₀·(1 − q) +
 *   N(0, angleJitterDeg) from its centre (`angleAtBestDeg` θ₁, `angleAtWorstDeg` θ₀), in a random
 *   direction — so two good faces of one person have cos ≈ cos²θ₁.
 * - **Degraded faces look alike**: the offset direction is pulled towards one shared "generic
 *   degraded face" direction g with weight β(q) = `lowQualityPull`·(1 − q)³, so low-quality faces of
 *   DIFFERENT people are similar to each other (what makes single-linkage chains form in practice).
 * Seeded (`seed`): the same options give the same faces, bit for bit.
 */
export interface SyntheticOptions {
  seed: number;
  dim: number;
  identities: number;
  minFaces: number;
  maxFaces: number;
  tailAlpha: number;
  distractorShare: number;
  twinShare: number;
  twinCosine: number;
  lowQualityShare: number;
  lowQualityRange: [number, number];
  highQualityRange: [number, number];
  qualityRange: [number, number];
  magnitudeNoise: number;
  angleAtBestDeg: number;
  angleAtWorstDeg: number;
  angleJitterDeg: number;
  lowQualityPull: number;
  /** stop once this many faces exist (identities are generated until then); 0 = no cap */
  maxTotalFaces: number;
}

export const DEFAULT_SYNTHETIC: SyntheticOptions = {
  seed: 1,
  dim: 192,
  identities: 200,
  minFaces: 3,
  maxFaces: 300,
  tailAlpha: 1.3,
  distractorShare: 0.05,
  twinShare: 0.1,
  twinCosine: 0.55,
  lowQualityShare: 0.1,
  lowQualityRange: [0.02, 0.2],
  highQualityRange: [0.25, 1],
  qualityRange: [40, 90],
  magnitudeNoise: 2,
  angleAtBestDeg: 22,
  angleAtWorstDeg: 66,
  angleJitterDeg: 4,
  lowQualityPull: 0.8,
  maxTotalFaces: 0,
};

export interface SyntheticSet {
  faces: ClusterFace[];
  /** ground-truth identity per face (distractors have their own unique label) */
  truth: Int32Array;
  /** the true (noise-free) quality the face was generated with */
  trueQuality: Float32Array;
  options: SyntheticOptions;
}

function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

function normalise(v: Float32Array): Float32Array {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  const n = Math.sqrt(s) || 1;
  for (let i = 0; i < v.length; i++) v[i] /= n;
  return v;
}

function randomUnit(dim: number, gauss: () => number): Float32Array {
  const v = new Float32Array(dim);
  for (let i = 0; i < dim; i++) v[i] = gauss();
  return normalise(v);
}

/** unit vector orthogonal to `axis` (unit), from a raw direction */
function orthogonalTo(axis: Float32Array, v: Float32Array): Float32Array {
  let d = 0;
  for (let i = 0; i < v.length; i++) d += v[i] * axis[i];
  for (let i = 0; i < v.length; i++) v[i] -= d * axis[i];
  return normalise(v);
}

/** a unit vector at angle θ from `centre` (cos θ·μ + sin θ·w, w ⟂ μ) */
function atAngle(centre: Float32Array, offset: Float32Array, theta: number): Float32Array {
  const w = orthogonalTo(centre, offset);
  const out = new Float32Array(centre.length);
  const c = Math.cos(theta);
  const s = Math.sin(theta);
  for (let i = 0; i < out.length; i++) out[i] = c * centre[i] + s * w[i];
  return normalise(out);
}

const clamp01 = (x: number) => (x < 0 ? 0 : x > 1 ? 1 : x);

export function generateSynthetic(opts: Partial<SyntheticOptions> = {}): SyntheticSet {
  const o: SyntheticOptions = { ...DEFAULT_SYNTHETIC, ...opts };
  const rand = rng(o.seed);
  const gauss = gaussian(rand);
  const degraded = randomUnit(o.dim, gauss);
  const centres: Float32Array[] = [];
  const sizes: number[] = [];
  for (let k = 0; k < o.identities; k++) {
    const isTwin = k > 0 && rand() < o.twinShare;
    const base = isTwin
      ? atAngle(centres[k - 1], randomUnit(o.dim, gauss), Math.acos(o.twinCosine))
      : randomUnit(o.dim, gauss);
    centres.push(base);
    sizes.push(
      Math.min(o.maxFaces, Math.floor(o.minFaces * Math.pow(Math.max(rand(), 1e-9), -1 / o.tailAlpha))),
    );
  }
  const faces: ClusterFace[] = [];
  const truth: number[] = [];
  const trueQ: number[] = [];
  const cap = o.maxTotalFaces > 0 ? o.maxTotalFaces : Infinity;
  const addFace = (centre: Float32Array, label: number) => {
    const q =
      rand() < o.lowQualityShare ? uniform(rand, o.lowQualityRange) : uniform(rand, o.highQualityRange);
    const thetaDeg = o.angleAtBestDeg * q + o.angleAtWorstDeg * (1 - q) + o.angleJitterDeg * gauss();
    const beta = o.lowQualityPull * Math.pow(1 - q, 3);
    const noise = randomUnit(o.dim, gauss);
    for (let i = 0; i < o.dim; i++) noise[i] = beta * degraded[i] + Math.sqrt(1 - beta * beta) * noise[i];
    const unit = atAngle(centre, noise, (Math.max(0, thetaDeg) * Math.PI) / 180);
    const [lo, hi] = o.qualityRange;
    const magnitude = Math.max(0.1, lo + q * (hi - lo) + o.magnitudeNoise * gauss());
    faces.push({ id: `s${faces.length}`, unit, magnitude, quality: qualityOf(magnitude, o.qualityRange) });
    truth.push(label);
    trueQ.push(clamp01(q));
  };
  let label = 0;
  for (let k = 0; k < o.identities && faces.length < cap; k++, label++) {
    for (let j = 0; j < sizes[k] && faces.length < cap; j++) addFace(centres[k], label);
  }
  const distractors = Math.round((faces.length * o.distractorShare) / Math.max(1e-9, 1 - o.distractorShare));
  for (let d = 0; d < distractors; d++, label++) addFace(randomUnit(o.dim, gauss), label);
  // interleave so that identities arrive mixed (as photos would), deterministically
  const order = Array.from(faces.keys());
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return {
    faces: order.map((i, pos) => ({ ...faces[i], id: `s${pos}` })),
    truth: Int32Array.from(order, (i) => truth[i]),
    trueQuality: Float32Array.from(order, (i) => trueQ[i]),
    options: o,
  };
}

function uniform(rand: () => number, [a, b]: [number, number]): number {
  return a + (b - a) * rand();
}

/** identities count needed for about `faces` faces with these options (mean Pareto size) */
export function identitiesFor(faces: number, o: Partial<SyntheticOptions> = {}): number {
  const x = { ...DEFAULT_SYNTHETIC, ...o };
  const meanSize =
    x.tailAlpha > 1 ? Math.min(x.maxFaces, (x.minFaces * x.tailAlpha) / (x.tailAlpha - 1)) : x.maxFaces / 2;
  return Math.max(1, Math.round((faces * (1 - x.distractorShare)) / meanSize));
}

/** A set of about `faces` faces (identities are drawn until the cap, then distractors are added). */
export function syntheticOfSize(faces: number, o: Partial<SyntheticOptions> = {}): SyntheticSet {
  const share = o.distractorShare ?? DEFAULT_SYNTHETIC.distractorShare;
  const identified = Math.round(faces * (1 - share));
  return generateSynthetic({ ...o, identities: 2 * identitiesFor(faces, o) + 10, maxTotalFaces: identified });
}
