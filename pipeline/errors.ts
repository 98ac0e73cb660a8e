import { FacepipeError } from '../core/errors.ts';

/** Why a photo could not be analysed; `code` is stable and machine-readable. */
export type AnalyzeErrorCode =
  | 'EMPTY_FILE'
  | 'NOT_AN_IMAGE'
  | 'CORRUPT_IMAGE'
  | 'PIXEL_LIMIT'
  | 'FILE_TOO_LARGE'
  | 'READ_FAILED'
  | 'INFERENCE_FAILED';

/** Only an inference failure may be transient; the bytes decide every other code. */
export class AnalyzeError extends FacepipeError {
  declare readonly code: AnalyzeErrorCode;
  constructor(code: AnalyzeErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, { retriable: code === 'INFERENCE_FAILED', cause: options?.cause });
  }
}
