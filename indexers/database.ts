import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type { FaceRecord, UnassignedReason } from '../schemas/face.ts';
import {
  SIDECAR_FILE,
  currentIndexPath,
  loadCheckpoint,
  writeCheckpoint,
  type LoadResult,
} from './checkpoint.ts';
import { DEFAULT_HNSW, HnswIndex, type HnswParams, type LabelHit } from './hnswIndex.ts';
import { indexLog, type IndexLogger } from './log.ts';
import { FaceStore, STORE_FILE, StoreCorruptError } from './store.ts';
import { PeopleStore } from './store/people.ts';
import type {
  Correction,
  FaceDatabase,
  Neighbour,
  StoredCorrection,
  StoredFace,
  StoredIdentity,
  StoredIdentityEvent,
  StoredPhoto,
  VerifyReport,
} from './types.ts';
import { FacepipeError } from '../core/errors.ts';

export { StoreCorruptError } from './store.ts';

export interface OpenOptions {
  modelId: string;
  dim: number;
  /** HNSW graph degree (default 16) */
  M?: number;
  /** HNSW build-time candidate list (default 100) */
  efConstruction?: number;
  /** HNSW search-time candidate list (default 128: recall@10 ≥ 0.98 at 100k × 512, see bench) */
  ef?: number;
  /** rebuild the index without tombstones once they exceed this share of its nodes (default 0.2) */
  compactShare?: number;
  /** told how far a rebuild from the store is (faces done, faces in all); the CLI draws the bar */
  onRebuildProgress?: (done: number, total: number) => void;
  /** checkpoint automatically after this many changes since the last one (default 0: only on close/checkpoint()) */
  checkpointEvery?: number;
  log?: IndexLogger;
  /**
   * rebuild the index from the store without reading the checkpoint at all (`index rebuild`: the
   * repair must work whatever state the old file is in)
   */
  ignoreCheckpoint?: boolean;
}

export type ExistingOpenOptions = Partial<Omit<OpenOptions, 'modelId' | 'dim'>>;

/** How the index was brought up to date with the store when the database was opened. */
export interface RecoveryInfo {
  /** created: new data dir; loaded: checkpoint current; replayed: checkpoint + changes after it; rebuilt: from the store */
  action: 'created' | 'loaded' | 'replayed' | 'rebuilt';
  reason?: string;
  /** changes (faces) replayed on top of the checkpoint */
  replayed: number;
  checkpointSeq: number;
  storeSeq: number;
  ms: number;
}

export interface IndexVerifyReport extends VerifyReport {
  seq: number;
  checkpointSeq: number | null;
  tombstones: number;
  /** kept faces searched by their own vector; each must come back among its 10 nearest */
  selfSearchChecked: number;
  selfSearchMisses: number;
  /** SQLite quick_check of the store: 'ok' or what is wrong */
  storeIntegrity: string;
}

/** The embedded FaceDatabase plus the operator-level extras of this implementation. */
export interface EmbeddedFaceDatabase extends FaceDatabase {
  readonly recovery: RecoveryInfo;
  readonly storePath: string;
  verify(opts?: { selfSearchSample?: number }): IndexVerifyReport;
  /** Rebuild the index from the store (drops tombstones) and checkpoint it. */
  rebuildIndex(reason?: string): void;
  /** Rebuild without tombstones when they exceed compactShare (or always with force); true if it did. */
  compact(force?: boolean): boolean;
  /** Tombstones (deleted vectors still in the graph). */
  tombstones(): number;
  setEf(ef: number): void;
  hnswParams(): HnswParams;
  close(opts?: { checkpoint?: boolean }): void;
  /** A note the programs keep in the store's metadata (e.g. a recluster still owed); null deletes it. */
  getNote(key: string): string | undefined;
  setNote(key: string, value: string | null): void;
}

const META_MODEL = 'model_id';
const META_DIM = 'dim';

/** Opens (creating if needed) the data dir of one embedding model; the index is recovered first. */
export function openFaceDatabase(dataDir: string, opts: OpenOptions): EmbeddedFaceDatabase {
  mkdirSync(dataDir, { recursive: true });
  const storePath = path.join(dataDir, STORE_FILE);
  // only a data dir without facepipe's files starts a new store: a checkpoint or a write-ahead log
  // without the store beside it means the store was lost or moved
  const leftover = [SIDECAR_FILE, `${STORE_FILE}-wal`].find((f) => existsSync(path.join(dataDir, f)));
  if (!existsSync(storePath) && leftover) {
    throw new StoreCorruptError(
      storePath,
      `no store, while ${leftover} is there; refusing to start an empty store beside it`,
    );
  }
  const store = new FaceStore(storePath, { create: true });
  try {
    bindModel(store, opts);
    return new EmbeddedDatabase(dataDir, store, opts);
  } catch (err) {
    store.close();
    throw err;
  }
}

/** A data dir with no store: the user pointed a command at the wrong folder, or has not run yet. */
export class NoStoreError extends FacepipeError {
  constructor(readonly dataDir: string) {
    super(
      'NO_STORE',
      `no facepipe store in ${dataDir} (no ${STORE_FILE}): pass the --data folder a \`facepipe run\` or indexer wrote, ` +
        `or run \`facepipe run <photos> --data ${dataDir}\` first`,
    );
  }
}

/** Opens a data dir that must already hold a store; model id and dimension come from its metadata. */
export function openExistingDatabase(dataDir: string, opts: ExistingOpenOptions = {}): EmbeddedFaceDatabase {
  const storePath = path.join(dataDir, STORE_FILE);
  if (!existsSync(storePath)) throw new NoStoreError(dataDir);
  const store = new FaceStore(storePath, { create: false });
  try {
    const modelId = store.getMeta(META_MODEL);
    const dim = Number(store.getMeta(META_DIM));
    if (!modelId || !(dim > 0)) throw new Error(`store ${storePath} has no model id / dimension recorded`);
    return new EmbeddedDatabase(dataDir, store, { ...opts, modelId, dim });
  } catch (err) {
    store.close();
    throw err;
  }
}

/** A store holds the embeddings of exactly one model: record it, or check it matches. */
function bindModel(store: FaceStore, opts: OpenOptions): void {
  if (!Number.isInteger(opts.dim) || opts.dim <= 0)
    throw new Error(`invalid embedding dimension ${opts.dim}`);
  const modelId = store.getMeta(META_MODEL);
  const dim = store.getMeta(META_DIM);
  if (modelId === undefined) {
    store.db.transaction(() => {
      store.setMeta(META_MODEL, opts.modelId);
      store.setMeta(META_DIM, String(opts.dim));
      store.setMeta('created_at', new Date().toISOString());
    })();
    return;
  }
  if (modelId !== opts.modelId || Number(dim) !== opts.dim) {
    throw new Error(
      `store ${store.file} holds ${modelId} (${dim}-d) embeddings, asked to open it for ${opts.modelId} (${opts.dim}-d); ` +
        `use a separate data dir per model`,
    );
  }
}

class EmbeddedDatabase implements EmbeddedFaceDatabase {
  readonly modelId: string;
  readonly dim: number;
  readonly storePath: string;
  readonly people: PeopleStore;
  recovery!: RecoveryInfo;

  private index!: HnswIndex;
  private readonly params: HnswParams;
  private readonly compactShare: number;
  private readonly checkpointEvery: number;
  private readonly onRebuildProgress?: (done: number, total: number) => void;
  private readonly log: IndexLogger;
  private readonly ignoreCheckpoint: boolean;
  /** label → faceId of every searchable vector */
  private labels = new Map<number, string>();
  /** store sequence the in-memory index reflects */
  private appliedSeq = 0;
  private checkpointSeq: number | null = null;
  private dirty = false;
  private txDepth = 0;
  private closed = false;

  constructor(
    readonly dataDir: string,
    private readonly store: FaceStore,
    opts: OpenOptions,
  ) {
    this.modelId = opts.modelId;
    this.dim = opts.dim;
    this.storePath = store.file;
    this.people = new PeopleStore(store.db);
    this.params = {
      M: opts.M ?? DEFAULT_HNSW.M,
      efConstruction: opts.efConstruction ?? DEFAULT_HNSW.efConstruction,
      ef: opts.ef ?? DEFAULT_HNSW.ef,
    };
    this.compactShare = opts.compactShare ?? 0.2;
    this.checkpointEvery = opts.checkpointEvery ?? 0;
    this.onRebuildProgress = opts.onRebuildProgress;
    this.log = opts.log ?? indexLog;
    this.ignoreCheckpoint = opts.ignoreCheckpoint ?? false;
    this.recover();
  }

  // ---- recovery -------------------------------------------------------------------------------

  /** Brings the index up to date with the store: load + replay, or rebuild; only then is it served. */
  private recover(): void {
    const started = Date.now();
    const storeSeq = this.store.faces.seq();
    const loaded: LoadResult = this.ignoreCheckpoint
      ? { ok: false, reason: 'rebuild requested (the old index file is not read)' }
      : loadCheckpoint(this.dataDir, {
          modelId: this.modelId,
          dim: this.dim,
          storeSeq,
          params: { ...this.params },
        });
    if (loaded.ok) {
      const replayed = this.adopt(loaded.index, loaded.sidecar.seq);
      this.checkpointSeq = loaded.sidecar.seq;
      this.dirty = replayed > 0;
      const action = replayed > 0 ? 'replayed' : 'loaded';
      this.recovery = {
        action,
        replayed,
        checkpointSeq: loaded.sidecar.seq,
        storeSeq,
        ms: Date.now() - started,
      };
      if (replayed > 0)
        this.log.info(
          { dataDir: this.dataDir, replayed, from: loaded.sidecar.seq, to: storeSeq },
          `index replayed ${replayed} changes after its checkpoint`,
        );
      return;
    }
    const fresh = storeSeq === 0 && !existsSync(path.join(this.dataDir, SIDECAR_FILE));
    if (fresh) {
      this.index = HnswIndex.create(this.dim, { ...this.params });
      this.appliedSeq = 0;
      this.labels = new Map();
      this.writeCheckpointNow();
      this.recovery = {
        action: 'created',
        replayed: 0,
        checkpointSeq: 0,
        storeSeq,
        ms: Date.now() - started,
      };
      return;
    }
    this.log.warn(
      { dataDir: this.dataDir, reason: loaded.reason },
      `rebuilding index from the store: ${loaded.reason}`,
    );
    this.rebuildFromStore();
    this.recovery = {
      action: 'rebuilt',
      reason: loaded.reason,
      replayed: 0,
      checkpointSeq: this.checkpointSeq ?? 0,
      storeSeq,
      ms: Date.now() - started,
    };
  }

  /**
   * Takes a loaded checkpoint of sequence `fromSeq` and brings it to the store's state: vectors of
   * faces the store no longer keeps are tombstoned, faces changed after the checkpoint (or missing
   * from it) are (re)inserted. Returns how many faces were replayed.
   */
  private adopt(index: HnswIndex, fromSeq: number): number {
    // one read transaction: a consistent snapshot even while another process writes
    return this.store.db.transaction(() => this.adoptSnapshot(index, fromSeq))();
  }

  private adoptSnapshot(index: HnswIndex, fromSeq: number): number {
    const kept = this.store.faces.keptLabels();
    for (const label of index.storedLabels()) if (!kept.has(label)) index.remove(label);
    const changed = this.store.faces.changedSince(fromSeq);
    for (const c of changed) if (c.embedding) index.upsert(c.label, c.embedding);
    const absent = [...kept.keys()].filter((label) => !index.has(label));
    if (absent.length > 0) {
      this.log.warn(
        { dataDir: this.dataDir, absent: absent.length },
        'index checkpoint lacked faces its sequence covers; added them',
      );
      for (const f of this.store.faces.embeddingsOf(absent)) index.upsert(f.label, f.embedding);
    }
    this.index = index;
    this.labels = kept;
    this.appliedSeq = this.store.faces.seq();
    return changed.length + absent.length;
  }

  private rebuildFromStore(): void {
    // one read transaction: the rebuilt index is exactly the store at `seq`
    this.store.db.transaction(() => this.rebuildSnapshot())();
    this.writeCheckpointNow();
  }

  private rebuildSnapshot(): void {
    const total = this.store.faces.keptCount();
    const seq = this.store.faces.seq();
    const index = HnswIndex.create(this.dim, { ...this.params }, Math.max(1024, Math.ceil(total * 1.1)));
    const labels = new Map<number, string>();
    const progress = this.onRebuildProgress;
    progress?.(0, total);
    let n = 0;
    for (const face of this.store.faces.iterateKept()) {
      index.upsert(face.label, face.embedding);
      labels.set(face.label, face.faceId);
      if (++n % 500 === 0) progress?.(n, total);
    }
    progress?.(n, total);
    // only now is the new index served
    this.index = index;
    this.labels = labels;
    this.appliedSeq = seq;
  }

  rebuildIndex(reason = 'requested'): void {
    this.assertOpen();
    this.log.info({ dataDir: this.dataDir, reason }, `rebuilding index from the store: ${reason}`);
    this.rebuildFromStore();
  }

  compact(force = false): boolean {
    this.assertOpen();
    const share = this.index.deletedShare();
    if (!force && (share <= this.compactShare || this.index.tombstoneCount() === 0)) return false;
    this.rebuildIndex(`compaction (${(share * 100).toFixed(1)}% tombstones)`);
    return true;
  }

  tombstones(): number {
    return this.index.tombstoneCount();
  }

  setEf(ef: number): void {
    this.index.setEf(ef);
    this.params.ef = ef;
  }

  hnswParams(): HnswParams {
    return { ...this.index.params };
  }

  // ---- keeping the index in step with the store -------------------------------------------------

  /** Applies store changes committed after `appliedSeq` to the in-memory index. */
  private syncIndex(): void {
    const seq = this.store.faces.seq();
    if (seq === this.appliedSeq) return;
    for (const c of this.store.faces.changedSince(this.appliedSeq)) {
      if (c.embedding) {
        this.index.upsert(c.label, c.embedding);
        this.labels.set(c.label, c.faceId);
      } else {
        this.index.remove(c.label);
        this.labels.delete(c.label);
      }
    }
    this.appliedSeq = seq;
    this.dirty = true;
    if (this.checkpointEvery > 0 && seq - (this.checkpointSeq ?? 0) >= this.checkpointEvery)
      this.checkpoint();
  }

  /**
   * Runs `fn` in a store transaction (nestable). The index follows the store only after the
   * outermost transaction commits, from the change log, so a rollback never leaves vectors behind.
   */
  transaction<T>(fn: () => T): T {
    this.assertOpen();
    this.txDepth++;
    let result: T;
    try {
      result = this.store.db.transaction(fn)();
    } finally {
      this.txDepth--;
    }
    if (this.txDepth === 0) this.syncIndex();
    return result;
  }

  seq(): number {
    return this.store.faces.seq();
  }

  // ---- Indexer --------------------------------------------------------------------------------

  upsertFaces(records: FaceRecord[]): { inserted: number; updated: number } {
    return this.transaction(() =>
      this.store.faces.upsertFaces(records, { modelId: this.modelId, dim: this.dim }),
    );
  }

  search(vector: Float32Array | number[], k: number, filter?: (faceId: string) => boolean): Neighbour[] {
    this.assertOpen();
    if (vector.length !== this.dim)
      throw new Error(`query has ${vector.length} dimensions, the index ${this.dim}`);
    // another process (the indexer) may have written to the store: follow it before answering
    if (this.txDepth === 0) this.syncIndex();
    const labelFilter = filter
      ? (label: number): boolean => {
          const id = this.labels.get(label);
          return id !== undefined && filter(id);
        }
      : undefined;
    let hits = this.index.search(vector, k, labelFilter);
    if (labelFilter && hits.length < Math.min(k, this.index.size()))
      hits = this.widenFilteredSearch(vector, k, labelFilter, hits);
    const out: Neighbour[] = [];
    for (const h of hits) {
      const faceId = this.labels.get(h.label);
      if (faceId !== undefined) out.push({ faceId, similarity: h.similarity });
    }
    return out;
  }

  /**
   * A selective filter can starve HNSW's candidate list and return fewer than k although more
   * faces pass the filter: search again with a wider list until k are found or all that pass.
   */
  private widenFilteredSearch(
    vector: ArrayLike<number>,
    k: number,
    labelFilter: (label: number) => boolean,
    hits: LabelHit[],
  ): LabelHit[] {
    let passing = 0;
    for (const label of this.index.liveLabels()) if (labelFilter(label)) passing++;
    const wanted = Math.min(k, passing);
    const ef = this.index.params.ef;
    for (let widen = ef * 4; hits.length < wanted; widen *= 4) {
      this.index.setEf(Math.min(widen, this.index.size()));
      try {
        hits = this.index.search(vector, k, labelFilter);
      } finally {
        this.index.setEf(ef);
      }
      if (widen >= this.index.size()) break;
    }
    return hits;
  }

  forgetFace(faceId: string): boolean {
    const removed = this.transaction(() => this.store.faces.deleteFace(faceId));
    this.compact();
    return removed;
  }

  forgetPhoto(photoId: string): number {
    const removed = this.transaction(() => {
      let n = 0;
      for (const id of this.store.faces.faceIdsOfPhoto(photoId)) if (this.store.faces.deleteFace(id)) n++;
      this.store.photos.deletePhotoRow(photoId);
      return n;
    });
    this.compact();
    return removed;
  }

  forgetIdentity(identityId: string): number {
    const removed = this.transaction(() => {
      let n = 0;
      for (const id of this.store.faces.faceIdsOfIdentity(identityId))
        if (this.store.faces.deleteFace(id)) n++;
      this.store.identities.deleteIdentityRow(identityId);
      return n;
    });
    this.compact();
    return removed;
  }

  size(): number {
    if (!this.closed && this.txDepth === 0) this.syncIndex();
    return this.index.size();
  }

  /** Checkpoints (unless told not to: the next open then replays the change log) and closes. */
  close(opts: { checkpoint?: boolean } = {}): void {
    if (this.closed) return;
    try {
      if (opts.checkpoint !== false && (this.dirty || this.checkpointSeq === null)) this.checkpoint();
    } finally {
      this.closed = true;
      this.store.close();
    }
  }

  getNote(key: string): string | undefined {
    return this.store.getMeta(`note:${key}`);
  }

  setNote(key: string, value: string | null): void {
    this.assertOpen();
    if (value === null) this.store.deleteMeta(`note:${key}`);
    else this.store.setMeta(`note:${key}`, value);
  }

  // ---- photos, faces, identities ------------------------------------------------------------------

  upsertPhoto(photo: Omit<StoredPhoto, 'processedAt'> & { processedAt?: string }): void {
    this.transaction(() => this.store.photos.upsertPhoto(photo));
  }

  getPhoto(photoId: string): StoredPhoto | undefined {
    return this.store.photos.getPhoto(photoId);
  }

  listPhotos(): StoredPhoto[] {
    return this.store.photos.listPhotos();
  }

  getFace(faceId: string): StoredFace | undefined {
    return this.store.faces.getFace(faceId);
  }

  facesOfPhoto(photoId: string): StoredFace[] {
    return this.store.faces.facesOfPhoto(photoId);
  }

  listFaces(filter?: { kept?: boolean; identityId?: string | null }): StoredFace[] {
    return this.store.faces.listFaces(filter);
  }

  counts(): { photos: number; faces: number; kept: number; dropped: number; identities: number } {
    return this.store.counts();
  }

  createIdentity(identityId: string, name: string | null = null): StoredIdentity {
    return this.transaction(() => this.store.identities.createIdentity(identityId, name, this.dim));
  }

  getIdentity(identityId: string): StoredIdentity | undefined {
    return this.store.identities.getIdentity(identityId);
  }

  listIdentities(): StoredIdentity[] {
    return this.store.identities.listIdentities();
  }

  identityCount(): number {
    return this.store.identities.countIdentities();
  }

  setFaceIdentity(faceId: string, identityId: string | null, reason: UnassignedReason | null = null): void {
    this.transaction(() => this.store.faces.setFaceIdentity(faceId, identityId, reason));
  }

  setUnassignedReason(faceId: string, reason: UnassignedReason | null): void {
    this.transaction(() => this.store.faces.setUnassignedReason(faceId, reason));
  }

  renameIdentity(identityId: string, name: string | null): void {
    this.transaction(() => this.store.identities.renameIdentity(identityId, name));
  }

  deleteIdentityRow(identityId: string): void {
    this.transaction(() => this.store.identities.deleteIdentityRow(identityId));
  }

  addCorrection(c: Correction): number {
    return this.transaction(() => this.store.identities.addCorrection(c));
  }

  listCorrections(): StoredCorrection[] {
    return this.store.identities.listCorrections();
  }

  appendIdentityEvents(events: Record<string, unknown>[]): void {
    this.transaction(() => this.store.identities.appendIdentityEvents(events));
  }

  listIdentityEvents(afterSeq?: number): StoredIdentityEvent[] {
    return this.store.identities.listIdentityEvents(afterSeq);
  }

  // ---- persistence ----------------------------------------------------------------------------

  checkpoint(): void {
    this.assertOpen();
    if (this.txDepth > 0)
      throw new Error('checkpoint() inside a transaction: the index would not match a committed sequence');
    if (this.index.deletedShare() > this.compactShare) {
      this.compact(); // rebuilds and checkpoints
      return;
    }
    if (!this.dirty && this.checkpointSeq !== null) return;
    this.writeCheckpointNow();
  }

  private writeCheckpointNow(): void {
    writeCheckpoint(this.dataDir, this.index, { seq: this.appliedSeq, modelId: this.modelId });
    this.checkpointSeq = this.appliedSeq;
    this.dirty = false;
  }

  verify(opts: { selfSearchSample?: number } = {}): IndexVerifyReport {
    this.assertOpen();
    const kept = this.store.faces.keptLabels();
    let missing = 0;
    let extra = 0;
    for (const label of kept.keys()) if (!this.index.has(label)) missing++;
    for (const label of this.index.liveLabels()) if (!kept.has(label)) extra++;
    const graphNodes = this.index.storedLabels().length;
    const graphConsistent = graphNodes === this.index.size() + this.index.tombstoneCount();
    const { checked, misses } = this.selfSearch([...kept.keys()], opts.selfSearchSample ?? 200);
    const storeIntegrity = this.store.quickCheck();
    return {
      store: kept.size,
      indexed: this.index.size(),
      missing,
      extra,
      indexPath: currentIndexPath(this.dataDir) ?? '',
      ok: missing === 0 && extra === 0 && misses === 0 && graphConsistent && storeIntegrity === 'ok',
      seq: this.store.faces.seq(),
      checkpointSeq: this.checkpointSeq,
      tombstones: this.index.tombstoneCount(),
      selfSearchChecked: checked,
      selfSearchMisses: misses,
      storeIntegrity,
    };
  }

  /** Searches a sample of kept faces by their own vector: each must be among its 10 nearest. */
  private selfSearch(labels: number[], sample: number): { checked: number; misses: number } {
    const step = Math.max(1, Math.floor(labels.length / Math.max(1, sample)));
    const chosen = labels.filter((_, i) => i % step === 0).slice(0, sample);
    let misses = 0;
    for (const f of this.store.faces.embeddingsOf(chosen)) {
      const hits = this.index.search(f.embedding, 10);
      if (!hits.some((h) => h.label === f.label)) misses++;
    }
    return { checked: chosen.length, misses };
  }

  private assertOpen(): void {
    if (this.closed) throw new Error(`face database ${this.dataDir} is closed`);
  }
}
