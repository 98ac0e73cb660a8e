/**
 * docker/compose.yaml and docker/Dockerfile: no Docker engine runs here, so the deployment is
 * checked statically — the compose file parses, every facepipe service runs a command the CLI
 * really has, with the options it really takes, and the Kafka service is a 3.9 KRaft node. Where
 * a compose client is installed (`docker compose` or `docker-compose`), `config` must accept it too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { buildProgram } from '../../cli/main.ts';
import { repoRoot } from '../../devkit/kafkaHarness.ts';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
  ports?: string[];
}

const composeFile = path.join(repoRoot, 'docker/compose.yaml');
const compose = parse(readFileSync(composeFile, 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};

function composeClient(): string[] | undefined {
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0)
    return ['docker', 'compose'];
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  return undefined;
}

describe('docker deployment files', () => {
  it('compose: Kafka 3.9 in KRaft mode, two ingest workers, the indexer and the lookup service', () => {
    const s = compose.services;
    expect(s.kafka.image).toMatch(/^apache\/kafka:3\.9\./);
    expect(s.kafka.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller');
    expect(s.kafka.environment?.KAFKA_AUTO_CREATE_TOPICS_ENABLE).toBe('false');
    const byCommand = (cmd: string) => Object.entries(s).filter(([, v]) => v.command?.[0] === cmd);
    expect(byCommand('worker')).toHaveLength(2);
    expect(byCommand('indexer')).toHaveLength(1);
    expect(byCommand('serve')).toHaveLength(1);
    for (const [name, svc] of Object.entries(s)) {
      if (name === 'kafka') continue;
      expect(svc.build?.dockerfile, name).toBe('docker/Dockerfile');
      expect(svc.environment?.KAFKA_BROKERS, name).toBe('kafka:9092');
    }
    // indexer and lookup share the data volume
    const dataVolume = (svc: Service) => svc.volumes?.find((v) => v.endsWith(':/data'));
    expect(dataVolume(byCommand('indexer')[0][1])).toBe(dataVolume(byCommand('serve')[0][1]));
  });

  it('compose: every facepipe command and option exists in the CLI', async () => {
    const program = await buildProgram();
    for (const [name, svc] of Object.entries(compose.services)) {
      if (!svc.command) continue;
      const [cmdName, ...args] = svc.command;
      const cmd = program.commands.find((c) => c.name() === cmdName);
      expect(cmd, `${name}: facepipe ${cmdName}`).toBeDefined();
      const flags = new Set(cmd!.options.flatMap((o) => [o.long, o.short].filter(Boolean)));
      for (const a of args.filter((x) => x.startsWith('-')))
        expect(flags.has(a), `${name}: ${cmdName} ${a}`).toBe(true);
    }
  });

  it('Dockerfile: CPU default target, CUDA target, the facepipe entry point', () => {
    const df = readFileSync(path.join(repoRoot, 'docker/Dockerfile'), 'utf8');
    const stages = [...df.matchAll(/^FROM\s+\S+\s+AS\s+(\S+)/gim)].map((m) => m[1]);
    expect(stages.at(-1)).toBe('cpu');
    expect(stages).toContain('cuda');
    expect(df).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
    expect(df).toMatch(/ENTRYPOINT \["node", "bin\/facepipe\.mjs"\]/);
    // every source folder the image copies exists
    for (const m of df.matchAll(/^COPY (\w+) \.\/\1$/gm))
      expect(spawnSync('test', ['-d', path.join(repoRoot, m[1])]).status, m[1]).toBe(0);
  });

  it('compose: a compose client, where one is installed, accepts the file', () => {
    const client = composeClient();
    // the client is optional (none on CI); the parse above always runs
    const out = client
      ? execFileSync(client[0], [...client.slice(1), '-f', composeFile, 'config'], {
          encoding: 'utf8',
          env: { ...process.env, PHOTOS: '/tmp', MODELS: '/tmp' },
        })
      : readFileSync(composeFile, 'utf8');
    expect(parse(out).services.indexer.command).toEqual(['indexer', '--data', '/data']);
  });
});
