import { existsSync } from 'node:fs';
import { Command } from 'commander';

// Each area registers its own commands; this file only assembles the program.
const AREAS = ['analyze', 'models', 'index', 'cluster', 'stream', 'run', 'serve', 'recluster'];

export async function buildProgram(): Promise<Command> {
  const program = new Command('facepipe')
    .description('Face clustering pipeline with a vector database (MagFace embeddings, HNSW, quality-aware clustering)')
    .version('0.1.0')
    .showHelpAfterError();
  for (const area of AREAS) {
    const file = new URL(`./${area}.ts`, import.meta.url);
    if (!existsSync(file)) continue;
    const mod = (await import(file.href)) as { register: (p: Command) => void };
    mod.register(program);
  }
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram();
  await program.parseAsync(argv);
}
