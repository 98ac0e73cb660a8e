import { Command } from 'commander';
import * as analyze from './analyze.ts';
import * as models from './models.ts';
import * as index from './index.ts';
import * as cluster from './cluster.ts';
import * as stream from './stream.ts';
import * as run from './run.ts';
import * as serve from './serve.ts';
import * as recluster from './recluster.ts';

// Each area registers its own commands; this file only assembles the program.
const AREAS: { register: (program: Command) => void }[] = [
  run,
  analyze,
  serve,
  recluster,
  cluster,
  index,
  stream,
  models,
];

export function buildProgram(): Command {
  const program = new Command('facepipe')
    .description(
      'Face clustering pipeline with a vector database (MagFace embeddings, HNSW, quality-aware clustering)',
    )
    .version('0.1.0')
    .showHelpAfterError();
  for (const area of AREAS) area.register(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
