/**
 * A real single-node Apache Kafka broker (KRaft, combined broker+controller) on loopback, for the
 * integration tests and `npm run kafka:local`. The jars come from Maven Central via
 * `test/kafka/assemble-kafka.sh`; the broker runs as a `java` child process with its data in a
 * temporary directory that is removed on stop.
 *
 * When KAFKA_BROKERS is set, nothing is started: the tests use that broker as it is.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';

/** test/kafka holds the assemble script and the jars it fetches (test/kafka/.kafka). */
const KAFKA_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../test/kafka');
const KAFKA_HOME = process.env.FACEPIPE_KAFKA_HOME ?? path.join(KAFKA_DIR, '.kafka');
const LIBS = path.join(KAFKA_HOME, 'libs');
const READY_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 20_000;

export interface TestBroker {
  /** bootstrap list, `host:port[,host:port]` */
  brokers: string;
  /** true when this process started the broker (false: KAFKA_BROKERS was used) */
  local: boolean;
  /** Stops the broker (if we started it) and removes its data. */
  stop(): Promise<void>;
  /** Stops the broker process but keeps its data and ports (local brokers only). */
  halt(): Promise<void>;
  /** Starts a halted broker again on the same ports and data. */
  resume(): Promise<void>;
  /** Path of the broker's log file (local brokers only). */
  logFile?: string;
}

export interface StartBrokerOptions {
  /** Start a local broker even when KAFKA_BROKERS is set (tests that stop and restart the broker). */
  forceLocal?: boolean;
}

export async function startBroker(opts: StartBrokerOptions = {}): Promise<TestBroker> {
  const external = process.env.KAFKA_BROKERS;
  if (external && !opts.forceLocal) return externalBroker(external);
  ensureAssembled();
  // the free ports are only free when we looked: another process may take one first, so retry
  for (let attempt = 1; ; attempt++) {
    try {
      return await startLocalBroker();
    } catch (err) {
      if (attempt >= 3) throw err;
    }
  }
}

async function startLocalBroker(): Promise<TestBroker> {
  const [brokerPort, controllerPort] = await freePorts(2);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'facepipe-kafka-'));
  const propsFile = writeServerProperties(dir, brokerPort, controllerPort);
  formatStorage(propsFile);
  const brokers = `127.0.0.1:${brokerPort}`;
  const logFile = path.join(dir, 'broker.log');
  let child: ChildProcess | undefined;

  const launch = async (): Promise<void> => {
    child = launchJava(['kafka.Kafka', propsFile], dir, logFile);
    await waitReady(brokers, child, logFile);
  };
  const halt = async (): Promise<void> => {
    if (child) await stopChild(child);
    child = undefined;
  };
  try {
    await launch();
  } catch (err) {
    await halt();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    brokers,
    local: true,
    logFile,
    halt,
    resume: launch,
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function externalBroker(brokers: string): TestBroker {
  const unsupported = async (): Promise<void> => {
    throw new Error('cannot halt/resume an external broker (KAFKA_BROKERS)');
  };
  return { brokers, local: false, stop: async () => {}, halt: unsupported, resume: unsupported };
}

/** Runs the assemble script when the jars are missing (it is a no-op otherwise). */
function ensureAssembled(): void {
  if (hasKafkaJar()) return;
  const r = spawnSync('bash', [path.join(KAFKA_DIR, 'assemble-kafka.sh')], { stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error('test/kafka/assemble-kafka.sh failed; see its output above');
}

function hasKafkaJar(): boolean {
  return existsSync(LIBS) && readdirSync(LIBS).some((f) => /^kafka_2\.13-.*\.jar$/.test(f));
}

/** Ports the OS considers free right now (bound then released: a tiny race we accept in tests). */
export async function freePorts(n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: n }, () => {
      return new Promise<import('node:net').Server>((resolve, reject) => {
        const s = createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => resolve(s));
      });
    }),
  );
  const ports = servers.map((s) => (s.address() as import('node:net').AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

function writeServerProperties(dir: string, brokerPort: number, controllerPort: number): string {
  const props = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${brokerPort}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': path.join(dir, 'data'),
    'num.partitions': '1',
    // one node: every internal topic has a single replica
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '4',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'default.replication.factor': '1',
    'min.insync.replicas': '1',
    // tests start consumers often: no waiting for more members to join a fresh group
    'group.initial.rebalance.delay.ms': '0',
    // topics are created explicitly by ensureTopics, as in production
    'auto.create.topics.enable': 'false',
    // a 2-core machine: few threads
    'num.network.threads': '2',
    'num.io.threads': '2',
    'background.threads': '2',
    'log.cleaner.enable': 'false',
  };
  const file = path.join(dir, 'server.properties');
  writeFileSync(
    file,
    Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
  writeFileSync(
    path.join(dir, 'log4j.properties'),
    [
      'log4j.rootLogger=WARN, file',
      'log4j.logger.kafka.server.KafkaRaftServer=INFO',
      'log4j.appender.file=org.apache.log4j.ConsoleAppender',
      'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    ].join('\n') + '\n',
  );
  return file;
}

/** Kafka's cluster ids are 16 random bytes in URL-safe base64; one starting with '-' confuses CLIs. */
function randomClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

function javaArgs(dir: string, mainAndArgs: string[]): string[] {
  return [
    '-Xms128m',
    '-Xmx512m',
    '-XX:+UseSerialGC',
    // a short-lived test broker: faster start beats peak throughput
    '-XX:TieredStopAtLevel=1',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`,
    '-cp',
    path.join(LIBS, '*'),
    ...mainAndArgs,
  ];
}

function formatStorage(propsFile: string): void {
  const dir = path.dirname(propsFile);
  const args = javaArgs(dir, ['kafka.tools.StorageTool', 'format', '-t', randomClusterId(), '-c', propsFile]);
  const r = spawnSync('java', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kafka storage format failed: ${r.stderr || r.stdout}`);
}

const liveChildren = new Set<ChildProcess>();
let exitHookInstalled = false;

/** Whatever happens to the test process, no broker outlives it. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of liveChildren) c.kill('SIGKILL');
  });
}

function launchJava(mainAndArgs: string[], dir: string, logFile: string): ChildProcess {
  installExitHook();
  const out = createWriteStream(logFile, { flags: 'a' });
  const child = spawn('java', javaArgs(dir, mainAndArgs), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  liveChildren.add(child);
  child.once('exit', () => liveChildren.delete(child));
  startWatchdog(child.pid!);
  return child;
}

/**
 * If this process dies by SIGKILL its exit hook never runs; a tiny detached shell kills the broker
 * when its parent is gone, so no java process is ever left behind.
 */
function startWatchdog(javaPid: number): void {
  const script = `while kill -0 ${process.pid} 2>/dev/null && kill -0 ${javaPid} 2>/dev/null; do sleep 1; done; kill -9 ${javaPid} 2>/dev/null; exit 0`;
  const w = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  w.unref();
}

async function waitReady(brokers: string, child: ChildProcess, logFile: string): Promise<void> {
  const kafka = new Kafka({
    brokers: [brokers],
    clientId: 'facepipe-test-broker-probe',
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let exited: number | null = null;
  child.once('exit', (code) => (exited = code ?? -1));
  while (Date.now() < deadline) {
    if (exited !== null) throw new Error(`kafka broker exited with ${exited} while starting; see ${logFile}`);
    const admin = kafka.admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      if (cluster.brokers.length > 0 && cluster.controller !== null) return;
    } catch {
      // not up yet
    } finally {
      await admin.disconnect().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  child.kill('SIGKILL');
  throw new Error(`kafka broker not ready after ${READY_TIMEOUT_MS} ms; see ${logFile}`);
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}
