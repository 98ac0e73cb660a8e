/** Every message and record contract of facepipe, with runtime validation (zod 4). */
export { SCHEMA_VERSION, BBox, Point, Landmarks, DropReason, FaceRecord, faceIdFor } from './face.ts';
export { IdentityEvent, IdentityEventType } from './identityEvent.ts';
export {
  PhotoEvent,
  PhotoSource,
  UriSource,
  InlineSource,
  PhotoResult,
  INLINE_MAX_BYTES,
  FACES_TOPIC_TYPE_HEADER,
} from './photoEvent.ts';
export type { PhotoEventInput, FacesTopicType } from './photoEvent.ts';
export { DeadLetter, DeadLetterStage, OriginalMessage, DEAD_LETTER_CODES } from './deadLetter.ts';

import { z } from 'zod';
import { FaceRecord } from './face.ts';
import { IdentityEvent } from './identityEvent.ts';
import { PhotoEvent, PhotoResult } from './photoEvent.ts';
import { DeadLetter } from './deadLetter.ts';

/** The schemas exported as JSON Schema files into schemas/json/ (name → schema). */
export const EXPORTED_SCHEMAS: Record<string, z.ZodType> = {
  PhotoEvent,
  PhotoResult,
  FaceRecord,
  IdentityEvent,
  DeadLetter,
};
