/**
 * `npm run kafka:local`: starts the same single-node KRaft broker the tests use, prints its
 * bootstrap address on stdout and stops it (removing its data) on Ctrl-C or SIGTERM.
 */
import { startBroker } from './kafkaBroker.ts';

const broker = await startBroker({ forceLocal: true });
console.log(broker.brokers);
process.stderr.write(
  `kafka broker ready at ${broker.brokers} (log: ${broker.logFile}).\n` +
    `  export KAFKA_BROKERS=${broker.brokers}\nPress Ctrl-C to stop.\n`,
);

let stopping = false;
async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  process.stderr.write('stopping kafka broker...\n');
  await broker.stop();
  process.stderr.write('stopped.\n');
  process.exit(0);
}
process.on('SIGINT', () => void shutdown());
process.on('SIGTERM', () => void shutdown());
// keep the event loop alive until a signal arrives
setInterval(() => {}, 1 << 30);
