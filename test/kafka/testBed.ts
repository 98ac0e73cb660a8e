import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { startBroker, type TestBroker } from '../../devkit/kafkaBroker.ts';
import { kill9, type Proc } from '../../devkit/kafkaHarness.ts';

export interface KafkaTestBed {
  /** the file's broker, started before its first test */
  broker: TestBroker;
  /** a folder of the file's own (data dirs, logs) */
  tmp: string;
  /** child processes still to kill when the file ends */
  procs: Proc[];
}

/**
 * What every Kafka test file sets up: one real broker for the file, a temp folder, and at the end
 * every child process killed, the broker stopped and the folder removed (kept, and said, with
 * FACEPIPE_KEEP_TEST_LOGS=1 for a post-mortem of the children's logs and data dirs).
 */
export function kafkaTestBed(name: string, opts: { forceLocal?: boolean } = {}): KafkaTestBed {
  const bed = {
    tmp: mkdtempSync(path.join(os.tmpdir(), `facepipe-${name}-`)),
    procs: [],
  } as unknown as KafkaTestBed;
  beforeAll(async () => {
    bed.broker = await startBroker(opts);
  });
  afterAll(async () => {
    await Promise.all(bed.procs.map((p) => kill9(p)));
    await bed.broker?.stop();
    if (process.env.FACEPIPE_KEEP_TEST_LOGS) console.error(`kafka test files kept in ${bed.tmp}`);
    else rmSync(bed.tmp, { recursive: true, force: true });
  });
  return bed;
}
