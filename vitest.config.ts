import { defineConfig } from 'vitest/config';

// Tests live beside the code (`*.test.ts`) and cross-process tests under `test/`.
// Inference and child-process tests are slow on a 2-core CPU, hence the generous timeouts;
// files run in forked processes so native addons (onnxruntime, hnswlib, sqlite) stay isolated.
export default defineConfig({
  test: {
    include: [
      '{core,schemas,indexers,clustering,pipeline,service,api,app,cli,bench,devkit,test}/**/*.test.ts',
    ],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
