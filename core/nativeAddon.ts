import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { packagePath } from './paths.ts';

/**
 * One of facepipe's own native addons (devkit/buildNative.mjs, run by `npm ci`), loaded once per
 * thread; undefined where it was not built or does not load (another Node ABI, a broken file), in
 * which case the caller takes its JavaScript path. Why it is absent is kept for `reason`.
 */
const loaded = new Map<string, { addon?: unknown; reason: string }>();

export function nativeAddon<T>(name: string): T | undefined {
  return load(name).addon as T | undefined;
}

/** 'loaded', or why the addon is not in use */
export function nativeAddonReason(name: string): string {
  return load(name).reason;
}

function load(name: string): { addon?: unknown; reason: string } {
  let entry = loaded.get(name);
  if (!entry) {
    const file = packagePath('node_modules', '.facepipe', 'native', `${name}.node`);
    if (!existsSync(file)) entry = { reason: `${name}.node not built` };
    else {
      try {
        entry = { addon: createRequire(import.meta.url)(file), reason: 'loaded' };
      } catch (err) {
        entry = { reason: `${name}.node does not load: ${(err as Error).message.split('\n')[0]}` };
      }
    }
    loaded.set(name, entry);
  }
  return entry;
}
