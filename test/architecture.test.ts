/**
 * The house rules, checked on the real import graph of the repository (every .ts/.mjs file, type
 * imports and dynamic imports included, read with the TypeScript compiler's own pre-processor):
 *
 *   core → schemas → indexers → clustering → pipeline → service → api → app → cli → devkit → bench, test
 *
 * A file may import its own room or a room to its left, never one to its right: the libraries
 * (core, schemas, indexers, clustering, pipeline, service) never import the wiring (app/), the API,
 * the CLI, the benchmarks or the tests, and no import circle exists between files. The environment
 * is read in one module, app/config.ts (tests, benchmarks and the dev kit set up their own).
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Rooms in dependency order: each may import only itself and the rooms before it. */
export const ROOMS = [
  'core',
  'schemas',
  'indexers',
  'clustering',
  'pipeline',
  'service',
  'api',
  'app',
  'cli',
  'devkit',
  'bench',
  'test',
  'bin',
] as const;
/** bench and test are siblings: neither imports the other. */
const SAME_RANK: Record<string, string> = { test: 'bench' };
const LIBRARIES = ['core', 'schemas', 'indexers', 'clustering', 'pipeline', 'service'];

type Graph = Map<string, string[]>;

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || e.name === 'node_modules' || e.name === 'results') continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (/\.(ts|mjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** file (relative to the root) → the repository files it imports */
function importGraph(): Graph {
  const graph: Graph = new Map();
  for (const room of ROOMS) {
    let files: string[];
    try {
      files = sourceFiles(path.join(repoRoot, room));
    } catch {
      continue;
    }
    for (const file of files) {
      const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
      const targets = info.importedFiles
        .map((f) => f.fileName)
        .filter((spec) => spec.startsWith('.'))
        .map((spec) => path.relative(repoRoot, path.resolve(path.dirname(file), spec)));
      graph.set(path.relative(repoRoot, file), targets);
    }
  }
  return graph;
}

function roomOf(file: string): string {
  return file.split(path.sep)[0];
}

function rank(room: string): number {
  const r = ROOMS.indexOf((SAME_RANK[room] ?? room) as (typeof ROOMS)[number]);
  return r < 0 ? ROOMS.length : r;
}

/** Imports that climb back up the flow: from a room to one after it. */
export function upwardImports(graph: Graph): string[] {
  const bad: string[] = [];
  for (const [file, targets] of graph)
    for (const t of targets) {
      const from = roomOf(file);
      const to = roomOf(t);
      if (from !== to && rank(to) >= rank(from)) bad.push(`${file} -> ${t}`);
    }
  return bad;
}

/** Strongly connected components with more than one file (Tarjan), i.e. import circles. */
export function importCircles(graph: Graph): string[][] {
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const circles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) circles.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return circles;
}

describe('the house rules', () => {
  const graph = importGraph();

  it('reads the real import graph', () => {
    // the flow the README describes must be visible in the graph the rules are checked on
    expect(graph.get(path.join('app', 'run.ts'))).toContain(path.join('service', 'ingestStep.ts'));
    expect(graph.get(path.join('app', 'indexer.ts'))).toContain(path.join('service', 'ingestStep.ts'));
    for (const room of LIBRARIES)
      expect(
        [...graph.keys()].some((f) => roomOf(f) === room),
        room,
      ).toBe(true);
  });

  it('no import climbs back up the flow (libraries never import app/, api/, cli/, bench/ or test/)', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  it('has no import circle', () => {
    expect(importCircles(graph)).toEqual([]);
  });

  it('reads the environment in one module only (app/config.ts)', () => {
    const readers = [...graph.keys()].filter((f) => {
      if (['test', 'bench', 'devkit', 'bin'].includes(roomOf(f)) || f.endsWith('.test.ts')) return false;
      return /process\.env\b/.test(
        readFileSync(path.join(repoRoot, f), 'utf8').replace(/\/\/.*|\/\*[\s\S]*?\*\//g, ''),
      );
    });
    expect(readers).toEqual([path.join('app', 'config.ts')]);
  });

  it('the HTTP routes take typed requests from their zod schemas (no casts)', () => {
    const casts = [...graph.keys()]
      .filter((f) => roomOf(f) === 'api')
      .filter((f) =>
        /request\.(params|query|body)\s+as\b/.test(readFileSync(path.join(repoRoot, f), 'utf8')),
      );
    expect(casts).toEqual([]);
  });

  it('the checks find what they look for', () => {
    const bad: Graph = new Map([
      ['pipeline/a.ts', ['app/b.ts', 'schemas/c.ts']],
      ['app/b.ts', ['pipeline/a.ts']],
      ['schemas/c.ts', ['test/d.ts']],
      ['test/d.ts', ['bench/e.ts']],
      ['bench/e.ts', []],
      ['api/x.ts', ['api/y.ts']],
      ['api/y.ts', ['api/x.ts']],
    ]);
    expect(upwardImports(bad)).toEqual([
      'pipeline/a.ts -> app/b.ts',
      'schemas/c.ts -> test/d.ts',
      'test/d.ts -> bench/e.ts',
    ]);
    expect(importCircles(bad).map((c) => c.join(' '))).toEqual(
      expect.arrayContaining(['api/x.ts api/y.ts', 'app/b.ts pipeline/a.ts']),
    );
  });
});
