/**
 * Child process of the crash test: opens a data dir (recovering its index), then inserts faces in
 * small transactions, replays some, forgets some, flips some to dropped, checkpoints every few
 * batches, and reports each batch on stdout. The parent SIGKILLs it at a random point.
 *
 * usage: node bin/run-ts.mjs test/indexers/crashChild.ts <dataDir> <run> <batches>
 */
import { openFaceDatabase } from '../../indexers/database.ts';
import { faceRecord, randomFeature, rng } from '../../indexers/testUtil.ts';

const CRASH_DIM = 64;
const CRASH_MODEL = 'crash-model';

const [dataDir, runArg, batchesArg] = process.argv.slice(2);
const run = Number(runArg);
const batches = Number(batchesArg ?? 25);
const rand = rng(1000 + run);

const db = openFaceDatabase(dataDir, {
  modelId: CRASH_MODEL,
  dim: CRASH_DIM,
  compactShare: 0.3,
});
process.stdout.write('ready\n');

for (let b = 0; b < batches; b++) {
  const faces = Array.from({ length: 8 }, (_, j) =>
    faceRecord(`r${run}-b${b}-${j}`, j, randomFeature(rand, CRASH_DIM), CRASH_MODEL, rand() > 0.15),
  );
  db.upsertFaces(faces);
  if (b % 3 === 2) {
    // replay an earlier batch (idempotent), forget one of its faces, and drop another
    const earlier = db.listFaces().slice(-24);
    if (earlier.length > 2) {
      const victim = earlier[Math.floor(rand() * earlier.length)];
      db.forgetFace(victim.faceId);
      const flip = earlier.find((f) => f.faceId !== victim.faceId && f.kept);
      if (flip)
        db.upsertFaces([
          {
            ...flip,
            v: 1,
            embedding: Array.from(flip.embedding),
            kept: false,
            reason: 'low_magnitude',
            library: undefined,
          },
        ]);
    }
    db.upsertFaces(faces);
  }
  if (b % 4 === 1) {
    // re-analysis of an earlier face: same id, new vector (the index must follow)
    const earlier = db.listFaces({ kept: true }).slice(-30);
    const f = earlier[Math.floor(rand() * earlier.length)];
    if (f)
      db.upsertFaces([
        { ...f, v: 1, embedding: randomFeature(rand, CRASH_DIM), reason: undefined, library: undefined },
      ]);
  }
  if (b % 7 === 6) db.forgetPhoto(`r${run}-b${b - 1}-${b % 8}`);
  process.stdout.write(`batch ${b}\n`);
  if (b % 5 === 4) db.checkpoint();
}
process.stdout.write('done\n');
// stay alive until killed: the parent decides when the process dies
setInterval(() => undefined, 1 << 30);
