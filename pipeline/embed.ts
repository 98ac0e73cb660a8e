import type { Piscina } from 'piscina';
import { Batcher } from './batcher.ts';
import type { EmbedTask } from './inferenceWorker.ts';
import type { EmbedderManifest } from './models.ts';
import { magnitudeGate, magnitudeOf, unitOf, type GateResult } from './qualityGate.ts';
import type { SessionSpec } from './session.ts';

/**
 * Default faces per inference batch, chosen from bench/pipeline.ts on the project's 2-core CPU
 * (MobileFaceNet, bare onnxruntime session, 2 threads: batch 1 ≈ 200–270, 4 ≈ 240–295,
 * 8 ≈ 185–330, 32 ≈ 130–290 faces/s — batch 4 is at or near the top in every run, and larger
 * batches add latency and vary more). On a GPU larger batches pay off: raise `batchSize`
 * (createAnalyzer({ batchSize: 32 }) / --batch-size 32) there. The batching is real either way:
 * faces of many concurrently analysed photos share a batch.
 */
export const DEFAULT_BATCH_SIZE = 4;
/** How long a partial batch waits for more faces before it is sent. */
export const DEFAULT_BATCH_DELAY_MS = 3;

export interface FaceEmbedding extends GateResult {
  /** raw feature; its L2 norm is `magnitude` */
  embedding: Float32Array;
  /** embedding / magnitude */
  unit: Float32Array;
}

export interface EmbedderOptions {
  batchSize: number;
  batchDelayMs: number;
  /** batches in flight at once (the number of inference workers + 1) */
  concurrency: number;
}

/**
 * The embedding stage: aligned faces (size×size×3 RGB, uint8) from any number of callers are
 * batched and run in the worker pool; each result carries the raw feature, magnitude, unit vector
 * and the manifest-calibrated quality/gate.
 */
export class Embedder {
  private readonly batcher: Batcher<Uint8Array, Float32Array>;
  private readonly faceBytes: number;

  constructor(
    private readonly pool: Piscina,
    private readonly spec: SessionSpec,
    readonly manifest: EmbedderManifest,
    readonly options: EmbedderOptions,
  ) {
    const [w, h] = manifest.input.size;
    this.faceBytes = w * h * 3;
    this.batcher = new Batcher((faces) => this.runBatch(faces), {
      batchSize: options.batchSize,
      delayMs: options.batchDelayMs,
      concurrency: options.concurrency,
    });
  }

  async embed(aligned: Uint8Array): Promise<FaceEmbedding> {
    if (aligned.length !== this.faceBytes) {
      throw new Error(
        `aligned face has ${aligned.length} bytes, expected ${this.faceBytes} (${this.manifest.input.size.join('×')}×3)`,
      );
    }
    const embedding = await this.batcher.submit(aligned);
    const magnitude = magnitudeOf(embedding);
    return {
      embedding,
      unit: unitOf(embedding, magnitude),
      ...magnitudeGate(this.manifest.quality, magnitude),
    };
  }

  /** Resolves when no batch is waiting or running. */
  onIdle(): Promise<void> {
    return this.batcher.onIdle();
  }

  embedMany(aligned: readonly Uint8Array[]): Promise<FaceEmbedding[]> {
    return Promise.all(aligned.map((a) => this.embed(a)));
  }

  /** One batch in a worker: raw features, split per face. */
  private async runBatch(faces: Uint8Array[]): Promise<Float32Array[]> {
    const packed = new Uint8Array(faces.length * this.faceBytes);
    faces.forEach((f, i) => packed.set(f, i * this.faceBytes));
    const m = this.manifest;
    const task: EmbedTask = {
      spec: this.spec,
      inputName: m.input.name,
      outputName: m.rawOutput,
      transform: {
        colorOrder: m.input.colorOrder,
        scale: m.input.scale,
        mean: m.input.mean,
        std: m.input.std,
      },
      width: m.input.size[0],
      height: m.input.size[1],
      faces: packed,
      count: faces.length,
    };
    const out = (await this.pool.run(task, { name: 'embed', transferList: [packed.buffer] })) as Float32Array;
    const dim = out.length / faces.length;
    if (dim !== m.embeddingDim)
      throw new Error(
        `embedder ${m.name} gave ${dim} values per face, manifest embeddingDim is ${m.embeddingDim}`,
      );
    return faces.map((_, i) => out.slice(i * dim, (i + 1) * dim));
  }
}
