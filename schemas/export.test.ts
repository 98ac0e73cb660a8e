import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { JSON_DIR, renderJsonSchemas } from './export.ts';

describe('exported JSON Schema files', () => {
  it('are current (run `node bin/run-ts.mjs schemas/export.ts` after changing a schema)', () => {
    const expected = renderJsonSchemas();
    expect(Object.keys(expected).sort()).toEqual(
      readdirSync(JSON_DIR)
        .filter((f) => f.endsWith('.schema.json'))
        .sort(),
    );
    for (const [file, text] of Object.entries(expected)) {
      expect(readFileSync(path.join(JSON_DIR, file), 'utf8'), file).toBe(text);
    }
  });

  it('describe the wire format: required fields and the source union', () => {
    const photo = JSON.parse(renderJsonSchemas()['PhotoEvent.schema.json']) as {
      required: string[];
      properties: { source: { oneOf: unknown[] } };
    };
    expect(photo.required).toEqual(expect.arrayContaining(['photoId', 'source', 'createdAt']));
    expect(photo.required).not.toContain('v');
    expect(photo.properties.source.oneOf).toHaveLength(2);
  });
});
