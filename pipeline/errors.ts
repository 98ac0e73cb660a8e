/** Why a photo could not be analysed; `code` is stable and machine-readable. */
export type AnalyzeErrorCode =
  | 'EMPTY_FILE'
  | 'NOT_AN_IMAGE'
  | 'CORRUPT_IMAGE'
  | 'PIXEL_LIMIT'
  | 'FILE_TOO_LARGE'
  | 'READ_FAILED'
  | 'INFERENCE_FAILED';

export class AnalyzeError extends Error {
  constructor(
    readonly code: AnalyzeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AnalyzeError';
  }
}
