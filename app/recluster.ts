/**
 * The batch recluster program (`facepipe recluster`): the identity service's recluster over an
 * opened data dir, summarised. The CLI draws the progress bar from `onProgress`.
 */
import type { FaceDatabase } from '../indexers/types.ts';
import type { IdentityService } from '../service/identityService.ts';

export interface ReclusterSummary {
  dataDir: string;
  /** store sequence of the snapshot the batch worked on */
  snapshotSeq: number;
  facesClustered: number;
  assigned: number;
  unassigned: number;
  /** faces stored by another writer while the batch ran, assigned online right after it */
  lateFaces: number;
  identitiesBefore: number;
  identitiesAfter: number;
  /** identity events recorded in the store's event log, by type */
  events: Record<string, number>;
  seconds: number;
}

/**
 * The batch job: recluster every kept face with the quality-aware method, keeping ids and names
 * (stable-id mapping) and honouring stored corrections; the events it causes are recorded in the
 * store's identity-event log. Safe while ingest continues (another process writing the same data
 * folder): the batch clusters the snapshot of faces present when it starts; faces stored after it
 * are left alone by the batch's write and then assigned online by the same rules as ingest, so no
 * face that arrives meanwhile ends up unassigned or pointing at a removed identity.
 */
export function reclusterStore(
  db: FaceDatabase,
  identities: IdentityService,
  opts: { onProgress?: (done: number, total: number) => void } = {},
): Omit<ReclusterSummary, 'dataDir'> {
  const started = Date.now();
  const before = db.listIdentities().length;
  const result = identities.recluster({ onProgress: opts.onProgress });
  const events: Record<string, number> = {};
  for (const e of result.events) events[e.type] = (events[e.type] ?? 0) + 1;
  return {
    snapshotSeq: result.snapshotSeq,
    facesClustered: result.assigned + result.unassigned,
    assigned: result.assigned,
    unassigned: result.unassigned,
    lateFaces: result.lateFaces,
    identitiesBefore: before,
    identitiesAfter: db.listIdentities().length,
    events,
    seconds: (Date.now() - started) / 1000,
  };
}
