import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { FacepipeError } from '../core/errors.ts';
import { packageRoot as repoRoot } from '../core/paths.ts';

/**
 * Model folders: a model is an ONNX file plus its entry in a JSON manifest. Every model-dependent
 * threshold (detector score/NMS, embedder magnitude calibration) is read from the manifest.
 */

/** A missing or malformed model folder, manifest or model file; names the file and the field. */
export class ModelConfigError extends FacepipeError {
  constructor(
    message: string,
    readonly file?: string,
    readonly field?: string,
  ) {
    super('MODEL_CONFIG', message);
  }
}

/** the per-face cues a quality mapping may combine (see pipeline/faceCues.ts) */
export const QUALITY_CUES = [
  'logMagnitude',
  'detectorScore',
  'poseResidual',
  'logFaceSize',
  'logSharpness',
] as const;
export type QualityCue = (typeof QUALITY_CUES)[number];

const Triple = z.tuple([z.number(), z.number(), z.number()]);
const Point = z.tuple([z.number(), z.number()]);

const PixelInput = z.looseObject({
  name: z.string().min(1),
  layout: z.literal('NCHW').default('NCHW'),
  colorOrder: z.enum(['RGB', 'BGR']),
  scale: z.number().positive(),
  mean: Triple,
  std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
});

const ModelBase = {
  name: z.string().min(1),
  file: z.string().min(1),
  sha256: z.string().optional(),
};

export const DetectorManifest = z.looseObject({
  ...ModelBase,
  task: z.literal('detector'),
  input: PixelInput.extend({ sizeMultiple: z.number().int().positive().default(32) }),
  outputs: z.looseObject({
    strides: z.array(z.number().int().positive()).min(1),
    order: z.array(z.string()).optional(),
  }),
  landmarks: z.literal(5).default(5),
  thresholds: z
    .looseObject({
      score: z.number().min(0).max(1).default(0.5),
      nmsIou: z.number().min(0).max(1).default(0.45),
      /** a box covering more than this share of a higher-scored one's smaller area is the same face (1: off) */
      nmsContainment: z.number().min(0).max(1).default(1),
      /** faces whose box's short side is below this many original pixels are kept out of clustering */
      minFaceSize: z.number().min(0).default(0),
    })
    .default({ score: 0.5, nmsIou: 0.45, nmsContainment: 1, minFaceSize: 0 }),
});
export type DetectorManifest = z.infer<typeof DetectorManifest>;

export const EmbedderManifest = z
  .looseObject({
    ...ModelBase,
    task: z.literal('embedder'),
    input: PixelInput.extend({ size: z.tuple([z.number().int().positive(), z.number().int().positive()]) }),
    alignment: z.looseObject({
      size: z.tuple([z.number().int().positive(), z.number().int().positive()]),
      templatePoints: z.array(Point).length(5),
    }),
    rawOutput: z.string().min(1),
    normalizedOutput: z.string().optional(),
    embeddingDim: z.number().int().positive(),
    quality: z.looseObject({
      /** faces whose raw feature norm is below this are kept=false, reason 'low_magnitude' */
      dropBelowMagnitude: z.number().nonnegative(),
      /** magnitude range mapped linearly (clamped) to quality 0..1 */
      magnitudeRange: z
        .tuple([z.number(), z.number()])
        .refine(([lo, hi]) => hi > lo, 'must be [lo, hi] with hi > lo'),
      /**
       * optional: quality from several cues (fitted by `models calibrate`): a reliability score
       * Σ weights[cue]·cue mapped linearly (clamped) from `range` to 0..1; absent → magnitude only
       */
      cues: z
        .looseObject({
          weights: z.partialRecord(z.enum(QUALITY_CUES), z.number()),
          range: z
            .tuple([z.number(), z.number()])
            .refine(([lo, hi]) => hi > lo, 'must be [lo, hi] with hi > lo'),
        })
        .optional(),
    }),
    thresholds: z.looseObject({ sameIdentityCosine: z.number().optional() }).optional(),
  })
  .refine((m) => m.input.size[0] === m.alignment.size[0] && m.input.size[1] === m.alignment.size[1], {
    message: 'alignment.size must equal input.size',
    path: ['alignment', 'size'],
  });
export type EmbedderManifest = z.infer<typeof EmbedderManifest>;

export type ModelManifest = DetectorManifest | EmbedderManifest;

export interface LoadedManifest {
  /** the models folder */
  dir: string;
  /** manifest files read, in order */
  files: string[];
  detectors: DetectorManifest[];
  embedders: EmbedderManifest[];
}

export interface ModelListing {
  name: string;
  task: 'detector' | 'embedder';
  path: string;
  manifestFile: string;
  present: boolean;
  bytes: number | null;
  /** sha256 of the file, checked against the manifest's (`ok` null when the manifest gives none) */
  sha256: { expected: string | null; actual: string | null; ok: boolean | null };
}

const MANIFEST_FILE = 'manifest.json';

function hasManifest(dir: string): boolean {
  return existsSync(path.join(dir, MANIFEST_FILE));
}

/** The models that ship with facepipe, found relative to the installed code (any working directory). */
export const bundledModelsDir = path.resolve(repoRoot, 'models');

/** Where a models folder came from, in the order they are tried. */
export type ModelsOrigin = '--models' | 'FACEPIPE_MODELS' | 'bundled';

/**
 * The models folder: `opt` (--models), then `fromEnv` (FACEPIPE_MODELS, as app/config.ts read it),
 * then the project's own `models/` (relative to the installed code, so `npx facepipe` works from
 * any working directory).
 */
export function locateModelsDir(opt?: string, fromEnv?: string): { dir: string; origin: ModelsOrigin } {
  const explicit = opt ?? fromEnv;
  if (explicit) {
    const dir = path.resolve(explicit);
    const origin = opt ? '--models' : 'FACEPIPE_MODELS';
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new ModelConfigError(`models folder not found: ${dir} (from ${origin})`, dir);
    }
    if (!hasManifest(dir)) {
      throw new ModelConfigError(
        `no ${MANIFEST_FILE} in models folder ${dir} (from ${origin})`,
        path.join(dir, MANIFEST_FILE),
      );
    }
    return { dir, origin };
  }
  if (!hasManifest(bundledModelsDir)) {
    throw new ModelConfigError(
      `the bundled models are missing (${bundledModelsDir}): reinstall facepipe, or pass --models DIR or set FACEPIPE_MODELS`,
    );
  }
  return { dir: bundledModelsDir, origin: 'bundled' };
}

export function resolveModelsDir(opt?: string, fromEnv?: string): string {
  return locateModelsDir(opt, fromEnv).dir;
}

function formatPath(prefix: (string | number)[], issuePath: PropertyKey[]): string {
  let out = '';
  for (const part of [...prefix, ...issuePath]) {
    out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  }
  return out || '(root)';
}

function parseEntry(entry: unknown, file: string, prefix: (string | number)[]): ModelManifest {
  const task = (entry as { task?: unknown } | null)?.task;
  const schema = task === 'detector' ? DetectorManifest : task === 'embedder' ? EmbedderManifest : null;
  if (!schema) {
    const field = formatPath(prefix, ['task']);
    throw new ModelConfigError(
      `${file}: ${field}: expected "detector" or "embedder", got ${JSON.stringify(task)}`,
      file,
      field,
    );
  }
  const parsed = schema.safeParse(entry);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = formatPath(prefix, issue.path);
    throw new ModelConfigError(`${file}: ${field}: ${issue.message}`, file, field);
  }
  return parsed.data;
}

function readManifestFile(file: string): ModelManifest[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ModelConfigError(`${file}: cannot read manifest: ${(err as Error).message}`, file);
  }
  if (json && typeof json === 'object' && 'models' in json) {
    const models = (json as { models: unknown }).models;
    if (!Array.isArray(models))
      throw new ModelConfigError(`${file}: models: expected an array`, file, 'models');
    return models.map((entry, i) => parseEntry(entry, file, ['models', i]));
  }
  return [parseEntry(json, file, [])];
}

/**
 * Reads `<dir>/manifest.json` (an object with a `models` array, or a single model entry) and any
 * extra `<dir>/*.manifest.json` files, validating every entry.
 */
export function loadManifest(dir: string): LoadedManifest {
  const main = path.join(dir, MANIFEST_FILE);
  if (!existsSync(main)) throw new ModelConfigError(`manifest not found: ${main}`, main);
  const extra = readdirSync(dir)
    .filter((f) => f.endsWith('.manifest.json'))
    .sort()
    .map((f) => path.join(dir, f));
  const files = [main, ...extra];
  const all = files.flatMap(readManifestFile);
  return {
    dir,
    files,
    detectors: all.filter((m): m is DetectorManifest => m.task === 'detector'),
    embedders: all.filter((m): m is EmbedderManifest => m.task === 'embedder'),
  };
}

/**
 * Rewrites one model's entry in the manifest file that holds it (temp file + rename, so a crash
 * leaves the old manifest): `update` receives the entry as stored and returns the new one. Returns
 * the file written.
 */
export function updateModelEntry(
  dir: string,
  name: string,
  update: (entry: Record<string, unknown>) => Record<string, unknown>,
): string {
  const manifest = loadManifest(dir);
  for (const file of manifest.files) {
    const json = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    const list = Array.isArray(json.models) ? (json.models as Record<string, unknown>[]) : null;
    const entries = list ?? [json];
    const at = entries.findIndex((e) => e.name === name);
    if (at < 0) continue;
    const next = update(entries[at]!);
    parseEntry(next, file, list ? ['models', at] : []);
    const out = list ? { ...json, models: entries.map((e, i) => (i === at ? next : e)) } : next;
    const tmp = `${file}.tmp-${process.pid}`;
    writeFileSync(tmp, JSON.stringify(out, null, 2) + '\n');
    renameSync(tmp, file);
    return file;
  }
  throw new ModelConfigError(`no model named "${name}" in ${manifest.files.join(', ')}`, manifest.files[0]);
}

/** Absolute path of a model's ONNX file (manifest paths are relative to the models folder). */
export function modelPath(dir: string, model: ModelManifest): string {
  return path.resolve(dir, model.file);
}

function sha256OfFile(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Every model of a folder's manifest, where its file is and whether it matches its sha256. */
export function listModels(dir: string): ModelListing[] {
  const manifest = loadManifest(dir);
  return [...manifest.detectors, ...manifest.embedders].map((m) => {
    const p = modelPath(dir, m);
    const present = existsSync(p);
    const expected = m.sha256?.toLowerCase() ?? null;
    const actual = present ? sha256OfFile(p) : null;
    return {
      name: m.name,
      task: m.task,
      path: p,
      manifestFile: manifest.files[0]!,
      present,
      bytes: present ? statSync(p).size : null,
      sha256: { expected, actual, ok: expected && actual ? expected === actual : null },
    };
  });
}

function pick<T extends ModelManifest>(
  list: T[],
  name: string | undefined,
  task: string,
  manifest: LoadedManifest,
): T {
  const chosen = name ? list.find((m) => m.name === name) : list[0];
  if (!chosen) {
    const names = list.map((m) => m.name).join(', ') || 'none';
    throw new ModelConfigError(
      name
        ? `no ${task} named "${name}" in ${manifest.files.join(', ')} (${task}s: ${names})`
        : `no ${task} in ${manifest.files.join(', ')}`,
      manifest.files[0],
    );
  }
  const file = modelPath(manifest.dir, chosen);
  if (!existsSync(file)) {
    throw new ModelConfigError(
      `model file missing: ${file} (field "file" of ${task} "${chosen.name}")`,
      file,
      'file',
    );
  }
  return chosen;
}

/** The detector and embedder to use: by name, or the first of each task in the manifest. */
export function selectModels(
  manifest: LoadedManifest,
  names: { detector?: string; embedder?: string } = {},
): { detector: DetectorManifest; embedder: EmbedderManifest } {
  return {
    detector: pick(manifest.detectors, names.detector, 'detector', manifest),
    embedder: pick(manifest.embedders, names.embedder, 'embedder', manifest),
  };
}
