/** Building dead letters from the message that could not be processed. */
import { DeadLetter, type DeadLetterStage } from '../../schemas/deadLetter.ts';
import { SCHEMA_VERSION } from '../../schemas/face.ts';

/** Largest original value copied into a dead letter (the default Kafka message limit is 1 MB). */
const DEAD_LETTER_VALUE_LIMIT = 256 * 1024;

/** A consumed message, as much of it as a dead letter keeps. */
export interface RawMessage {
  topic: string;
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
}

export function buildDeadLetter(
  msg: RawMessage,
  what: {
    stage: DeadLetterStage;
    code: string;
    reason: string;
    attempts: number;
    photoId?: string;
    uri?: string;
    worker?: string;
  },
): DeadLetter {
  const raw = msg.value ?? null;
  const text = raw?.toString('utf8') ?? null;
  const isText = raw !== null && Buffer.from(text!, 'utf8').equals(raw);
  const encoded = raw === null ? null : isText ? text! : raw.toString('base64');
  const truncated = encoded !== null && encoded.length > DEAD_LETTER_VALUE_LIMIT;
  return DeadLetter.parse({
    v: SCHEMA_VERSION,
    id: `${msg.topic}:${msg.partition}:${msg.offset}`,
    ...(what.photoId ? { photoId: what.photoId } : {}),
    ...(what.uri ? { uri: what.uri } : {}),
    stage: what.stage,
    code: what.code,
    reason: what.reason.slice(0, 4000),
    attempts: what.attempts,
    ...(what.worker ? { worker: what.worker } : {}),
    original: {
      topic: msg.topic,
      partition: msg.partition,
      offset: msg.offset,
      key: msg.key ? msg.key.toString('utf8') : null,
      value: truncated ? encoded!.slice(0, DEAD_LETTER_VALUE_LIMIT) : encoded,
      valueEncoding: isText || raw === null ? 'utf8' : 'base64',
      truncated,
    },
    at: new Date().toISOString(),
  });
}
