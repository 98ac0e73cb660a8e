import { z } from 'zod';
import { SCHEMA_VERSION } from './face.ts';

/** Inline photos travel inside the Kafka message; above this size, publish a URI instead. */
export const INLINE_MAX_BYTES = 512 * 1024;
/** base64 length of INLINE_MAX_BYTES bytes */
const INLINE_MAX_BASE64 = Math.ceil(INLINE_MAX_BYTES / 3) * 4;

/**
 * Where the photo's bytes are. A URI is resolved by the ingest worker under its own policy:
 * `file://` only below the configured roots, `http(s)://` only to allowed hosts, with size and
 * time limits (see pipeline/fetchPhoto.ts).
 */
export const UriSource = z.object({
  kind: z.literal('uri'),
  uri: z
    .string()
    .regex(/^(file|https?):\/\/\S+$/i, 'a file://, http:// or https:// URI')
    .max(4096)
    .describe('file:///absolute/path or http(s)://host/path'),
});
export const InlineSource = z.object({
  kind: z.literal('inline'),
  data: z
    .base64()
    .max(INLINE_MAX_BASE64)
    .describe(`the image bytes, base64; at most ${INLINE_MAX_BYTES} bytes`),
  mediaType: z.string().max(100).optional().describe('e.g. image/jpeg (informative: the bytes are sniffed)'),
});
export const PhotoSource = z.discriminatedUnion('kind', [UriSource, InlineSource]);
export type PhotoSource = z.infer<typeof PhotoSource>;

/** One photo to analyse: the message on the photos topic (key = photoId). */
export const PhotoEvent = z.object({
  v: z.literal(SCHEMA_VERSION).default(SCHEMA_VERSION),
  photoId: z
    .string()
    .min(1)
    .max(256)
    .regex(/^[\w.:@/+=-]+$/, 'letters, digits and . _ : @ / + = -')
    .describe('stable id chosen by the producer; re-sending the same id re-analyses the same photo'),
  source: PhotoSource,
  library: z.string().min(1).max(256).optional().describe('collection the photo belongs to'),
  tenant: z.string().min(1).max(256).optional(),
  createdAt: z.iso.datetime({ offset: true }).describe('when the event was produced (ISO-8601)'),
  takenAt: z.iso.datetime({ offset: true }).optional().describe('when the photo was taken, if known'),
});
export type PhotoEvent = z.infer<typeof PhotoEvent>;
/** What a producer writes (v may be omitted). */
export type PhotoEventInput = z.input<typeof PhotoEvent>;

/**
 * The per-photo result on the faces topic, published after the photo's FaceRecords
 * (same key, same partition, so it arrives after them). The indexer records the photo from it.
 */
export const PhotoResult = z.object({
  v: z.literal(SCHEMA_VERSION).default(SCHEMA_VERSION),
  photoId: z.string().min(1),
  uri: z.string().describe('the source URI, or inline:<sha256> for inline bytes'),
  library: z.string().optional(),
  tenant: z.string().optional(),
  width: z.number().int().nonnegative(),
  height: z.number().int().nonnegative(),
  contentHash: z.string().describe('sha256 of the bytes, hex'),
  modelId: z.string().min(1),
  faceIds: z.array(z.string()).describe('the faces published for this photo, kept and dropped'),
  at: z.iso.datetime({ offset: true }),
});
export type PhotoResult = z.infer<typeof PhotoResult>;

/** Header that tells the two kinds of message on the faces topic apart. */
export const FACES_TOPIC_TYPE_HEADER = 'facepipe-type';
export type FacesTopicType = 'face' | 'photo';
