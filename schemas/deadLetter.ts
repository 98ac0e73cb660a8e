import { z } from 'zod';
import { SCHEMA_VERSION } from './face.ts';

/** Where in the pipeline a message was given up on. */
export const DeadLetterStage = z.enum(['parse', 'validate', 'fetch', 'analyze', 'publish', 'index']);
export type DeadLetterStage = z.infer<typeof DeadLetterStage>;

/**
 * Stable, machine-readable reasons. Parse/validate: MALFORMED_JSON, SCHEMA_INVALID.
 * Fetch: FORBIDDEN_URI (file:// outside the roots, unsupported scheme), FORBIDDEN_HOST (not in the
 * allowlist), NOT_FOUND, NOT_A_FILE (a FIFO, device or folder), UNREACHABLE, TOO_LARGE, TIMEOUT,
 * FETCH_FAILED. Analyze: the codes of
 * pipeline/errors.ts (EMPTY_FILE, NOT_AN_IMAGE, CORRUPT_IMAGE, PIXEL_LIMIT, FILE_TOO_LARGE,
 * READ_FAILED, INFERENCE_FAILED). Index: MALFORMED_JSON, SCHEMA_INVALID, MODEL_MISMATCH (a face of
 * another model than the store's). Anything else: INTERNAL.
 */
export const DEAD_LETTER_CODES = [
  'MALFORMED_JSON',
  'SCHEMA_INVALID',
  'FORBIDDEN_URI',
  'FORBIDDEN_HOST',
  'NOT_FOUND',
  'NOT_A_FILE',
  'UNREACHABLE',
  'TOO_LARGE',
  'TIMEOUT',
  'FETCH_FAILED',
  'EMPTY_FILE',
  'NOT_AN_IMAGE',
  'CORRUPT_IMAGE',
  'PIXEL_LIMIT',
  'FILE_TOO_LARGE',
  'READ_FAILED',
  'INFERENCE_FAILED',
  'MODEL_MISMATCH',
  'INTERNAL',
] as const;

/** The message that could not be processed, as it was read. */
export const OriginalMessage = z.object({
  topic: z.string(),
  partition: z.number().int().nonnegative(),
  offset: z.string().describe('Kafka offset (a decimal string: offsets are 64-bit)'),
  key: z.string().nullable(),
  value: z.string().nullable().describe('the value as UTF-8 text (base64 when valueEncoding is base64)'),
  valueEncoding: z.enum(['utf8', 'base64']).default('utf8'),
  truncated: z
    .boolean()
    .default(false)
    .describe('true when the value was cut to fit the dead-letter message'),
});
export type OriginalMessage = z.infer<typeof OriginalMessage>;

/** A message that was given up on: published on the dead-letter topic, never retried forever. */
export const DeadLetter = z.object({
  v: z.literal(SCHEMA_VERSION).default(SCHEMA_VERSION),
  id: z
    .string()
    .min(1)
    .describe(
      'topic:partition:offset of the original (`file:<photoId>` on the embedded path): the same for a re-sent dead letter',
    ),
  photoId: z.string().optional().describe('when the original could be parsed far enough to have one'),
  uri: z.string().optional().describe('where the photo was read from, when known'),
  stage: DeadLetterStage,
  code: z
    .string()
    .min(1)
    .describe(`one of ${DEAD_LETTER_CODES.join(', ')}`),
  reason: z.string().describe('human-readable detail'),
  attempts: z.number().int().min(1).describe('how many times processing was tried'),
  worker: z.string().optional().describe('client id of the worker that gave up'),
  original: OriginalMessage.optional().describe(
    'the Kafka message given up on (absent for a photo of the embedded `facepipe run`)',
  ),
  at: z.iso.datetime({ offset: true }),
});
export type DeadLetter = z.infer<typeof DeadLetter>;
