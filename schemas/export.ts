/**
 * Writes the JSON Schema of every message contract into schemas/json/<Name>.schema.json.
 * Run `node bin/run-ts.mjs schemas/export.ts` after changing a schema; schemas/export.test.ts
 * fails while the committed files are stale.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { EXPORTED_SCHEMAS, SCHEMA_VERSION } from './index.ts';

export const JSON_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'json');

/** The file contents, by file name: deterministic, so the test can compare them byte for byte. */
export function renderJsonSchemas(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const [name, schema] of Object.entries(EXPORTED_SCHEMAS)) {
    // `input`: what a producer may send (defaults such as `v` are optional on the wire)
    const json = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input' }) as Record<string, unknown>;
    const doc = {
      $id: `urn:facepipe:schema:v${SCHEMA_VERSION}:${name}`,
      title: name,
      ...json,
    };
    files[`${name}.schema.json`] = JSON.stringify(doc, null, 2) + '\n';
  }
  return files;
}

export function writeJsonSchemas(dir = JSON_DIR): string[] {
  mkdirSync(dir, { recursive: true });
  const written: string[] = [];
  for (const [file, text] of Object.entries(renderJsonSchemas())) {
    writeFileSync(path.join(dir, file), text);
    written.push(path.join(dir, file));
  }
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const f of writeJsonSchemas()) console.log(f);
}
