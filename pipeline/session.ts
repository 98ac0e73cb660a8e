import * as ort from 'onnxruntime-node';
import { log } from '../core/log.ts';

/** How to open an onnxruntime session: model file, execution provider, thread counts. */
export interface SessionSpec {
  path: string;
  provider: 'cpu' | 'cuda';
  /** threads inside one operator (onnxruntime intraOpNumThreads) */
  intraOpThreads: number;
  /** threads across operators (onnxruntime interOpNumThreads) */
  interOpThreads: number;
  /**
   * onnxruntime's memory pattern (default true): a buffer plan per input shape, kept. Off for a
   * model fed a new shape per run (the detector: one per photo size), where the plans only pile up
   * (tens of MB over a folder of mixed sizes, measured by bench/peer.ts) and are seldom reused.
   */
  memPattern?: boolean;
}

export interface OpenedSession {
  session: ort.InferenceSession;
  provider: 'cpu' | 'cuda';
}

/**
 * Opens a session on the configured provider. CUDA is tried when asked for; if it cannot be
 * used the session falls back to CPU with one clear log line.
 */
let cudaUnavailable = false;

export async function openSession(spec: SessionSpec): Promise<OpenedSession> {
  const base = {
    intraOpNumThreads: spec.intraOpThreads,
    interOpNumThreads: spec.interOpThreads,
    graphOptimizationLevel: 'all' as const,
    enableMemPattern: spec.memPattern ?? true,
    // onnxruntime's intra-op threads spin while they wait for work by default: between two runs
    // (the decode of the next photo, the next batch) that is CPU burnt for nothing on a machine
    // whose other threads have real work, so they sleep instead
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  if (spec.provider === 'cuda' && !cudaUnavailable) {
    try {
      const session = await ort.InferenceSession.create(spec.path, {
        ...base,
        executionProviders: ['cuda', 'cpu'],
      });
      log.info({ model: spec.path, provider: 'cuda' }, 'onnxruntime session on CUDA');
      return { session, provider: 'cuda' };
    } catch (err) {
      // said once per thread; later sessions go straight to the CPU
      cudaUnavailable = true;
      log.warn({ err: (err as Error).message }, 'CUDA execution provider unavailable; falling back to CPU');
    }
  }
  const session = await ort.InferenceSession.create(spec.path, { ...base, executionProviders: ['cpu'] });
  return { session, provider: 'cpu' };
}
