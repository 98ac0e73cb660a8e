import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnalyzer, type Analyzer } from '../../pipeline/analyze.ts';
import { loadManifest } from '../../pipeline/models.ts';
import { batchToNchw } from '../../pipeline/preprocess.ts';

/**
 * A model exported by tools/magface_to_onnx.py (from a synthetic checkpoint in PyTorch's own file
 * format, random weights, one block per stage, 128-d) runs in the Node pipeline purely through the
 * manifest the tool wrote: shapes, preprocessing and the magnitude gate. Needs the Python tools'
 * requirements (`python3 -m pip install -r tools/requirements.txt`); without them this FAILS.
 */

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bundledModels = path.join(repoRoot, 'models');
const fixtures = path.join(repoRoot, 'test', 'fixtures');
const examples = path.join(repoRoot, 'examples');
const python = process.env.FACEPIPE_PYTHON ?? 'python3';
const MODEL = 'magface_tiny';
const DIM = 128;

const tmp = mkdtempSync(path.join(os.tmpdir(), 'facepipe-magface-'));
const modelsDir = path.join(tmp, 'models');
let analyzer: Analyzer;
// a failed set-up (e.g. missing Python requirements) fails every test with its message, rather
// than leaving them reported as skipped
let setupError: Error | undefined;
function ready(): void {
  if (setupError) throw setupError;
}

function runPython(args: string[]): string {
  const r = spawnSync(python, args, { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`cannot run ${python}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${python} ${args.join(' ')} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

function requirePythonTools(): void {
  const r = spawnSync(python, ['-c', 'import numpy, onnx, onnxruntime, PIL'], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `the MagFace export test needs the Python tools' requirements: run \`${python} -m pip install -r tools/requirements.txt\` ` +
        `(${r.error?.message ?? r.stderr.trim().split('\n').pop()})`,
    );
  }
}

/** A models folder with the bundled YuNet detector only; the exported embedder brings its own manifest. */
function detectorOnlyModelsDir(): void {
  const bundledManifest = JSON.parse(readFileSync(path.join(bundledModels, 'manifest.json'), 'utf8')) as {
    models: { task: string; file: string }[];
  };
  const detectors = bundledManifest.models.filter((m) => m.task === 'detector');
  mkdirSync(modelsDir, { recursive: true });
  for (const d of detectors) copyFileSync(path.join(bundledModels, d.file), path.join(modelsDir, d.file));
  writeFileSync(
    path.join(modelsDir, 'manifest.json'),
    JSON.stringify({ ...bundledManifest, models: detectors }, null, 2),
  );
}

beforeAll(async () => {
  try {
    requirePythonTools();
    detectorOnlyModelsDir();
    const checkpoint = path.join(tmp, 'tiny.pth');
    runPython([
      'tools/tests/synthetic_checkpoint.py',
      checkpoint,
      '--layers',
      '1,1,1,1',
      '--dim',
      String(DIM),
      '--seed',
      '3',
    ]);
    runPython([
      'tools/magface_to_onnx.py',
      checkpoint,
      '--arch',
      'iresnet18',
      '--layers',
      '1,1,1,1',
      '-o',
      path.join(modelsDir, `${MODEL}.onnx`),
    ]);
    analyzer = await createAnalyzer({ modelsDir, embedder: MODEL });
  } catch (err) {
    setupError = err as Error;
  }
});

afterAll(async () => {
  await analyzer?.close();
  rmSync(tmp, { recursive: true, force: true });
});

async function decodeRgb(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file)
    .removeAlpha()
    .toColourspace('srgb')
    .raw()
    .toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(3);
  return { data, width: info.width, height: info.height };
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const maxRelDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / Math.max(...Array.from(b, Math.abs));
};

describe('an exported MagFace model in the Node pipeline', () => {
  it('is found through the manifest the tool wrote beside it, with the MagFace contract', () => {
    ready();
    const loaded = loadManifest(modelsDir);
    const entry = loaded.embedders.find((m) => m.name === MODEL)!;
    expect(loaded.files.map((f) => path.basename(f))).toEqual(['manifest.json', `${MODEL}.manifest.json`]);
    expect(entry.input).toMatchObject({
      name: 'input',
      colorOrder: 'BGR',
      mean: [0, 0, 0],
      std: [1, 1, 1],
      size: [112, 112],
    });
    expect(entry.input.scale).toBeCloseTo(1 / 255, 12);
    expect(entry.embeddingDim).toBe(DIM);
    expect(analyzer.modelId).toBe(MODEL);
    expect(analyzer.dim).toBe(DIM);
  });

  it('embeds a fixture face: the manifest dim, a finite magnitude, the manifest quality gate', async () => {
    ready();
    const result = await analyzer.analyzeFile(path.join(examples, 'faceapi-crops', 'penny', '1.png'));
    expect(result.faces).toHaveLength(1);
    const face = result.faces[0]!;
    expect(face.embedding).toHaveLength(DIM);
    expect(Number.isFinite(face.magnitude) && face.magnitude > 0).toBe(true);
    expect(face.magnitude).toBeCloseTo(norm(face.embedding), 3);
    const { dropBelowMagnitude, magnitudeRange } = analyzer.manifest.quality;
    expect(face.kept).toBe(face.magnitude >= dropBelowMagnitude);
    const [lo, hi] = magnitudeRange;
    expect(face.quality).toBeCloseTo(Math.min(1, Math.max(0, (face.magnitude - lo) / (hi - lo))), 6);
    expect(face.alignedRgb).toHaveLength(112 * 112 * 3);
  });

  it('preprocesses by the manifest exactly as MagFace does (BGR, pixel/255, NCHW): Node = Python', async () => {
    ready();
    const toy = path.join(fixtures, 'magface-toy', '0.jpg');
    const { data, width, height } = await decodeRgb(toy); // already aligned 112×112
    const [node] = await analyzer.embedAligned([new Uint8Array(data)]);
    const raw = path.join(tmp, 'toy0.rgb');
    writeFileSync(raw, data);
    const model = path.join(modelsDir, `${MODEL}.onnx`);
    const official = JSON.parse(
      runPython(['tools/tests/embed_raw.py', model, raw, String(width), String(height)]),
    ) as number[];
    const swapped = JSON.parse(
      runPython(['tools/tests/embed_raw.py', model, raw, String(width), String(height), '--rgb']),
    ) as number[];
    expect(maxRelDiff(node!.embedding, official)).toBeLessThan(1e-4);
    // the check can tell the colour orders apart: the wrong one is far off
    expect(maxRelDiff(node!.embedding, swapped)).toBeGreaterThan(1e-2);
  });

  it('builds the input tensors of the reference MagFace preprocessing (magface-toy-tensors.json)', async () => {
    ready();
    const reference = JSON.parse(
      readFileSync(path.join(fixtures, 'reference', 'magface-toy-tensors.json'), 'utf8'),
    ) as {
      images: Record<string, { channelMeanBGR: number[]; samples: Record<string, number> }>;
    };
    const input = analyzer.manifest.input;
    for (const [image, ref] of Object.entries(reference.images)) {
      const { data } = await decodeRgb(path.join(fixtures, 'magface-toy', image));
      const t = batchToNchw([new Uint8Array(data)], 112, 112, input);
      const plane = 112 * 112;
      for (let c = 0; c < 3; c++) {
        const mean = t.subarray(c * plane, (c + 1) * plane).reduce((s, v) => s + v, 0) / plane;
        expect(mean, `${image} channel ${c}`).toBeCloseTo(ref.channelMeanBGR[c]!, 4);
      }
      for (const [key, value] of Object.entries(ref.samples)) {
        const [c, y, x] = key.split(',').map((p) => Number(p.slice(1)));
        expect(t[c! * plane + y! * 112 + x!], `${image} ${key}`).toBeCloseTo(value, 4);
      }
    }
  });
});
