import type Database from 'better-sqlite3';

/** One card of the people grid. */
export interface PersonCard {
  identityId: string;
  name: string | null;
  faceCount: number;
  photoCount: number;
  hidden: boolean;
  /** the user's chosen cover face while it still belongs to the identity, else its best-quality face */
  coverFaceId: string | null;
}

export interface PersonPageQuery {
  limit: number;
  offset: number;
  /** substring of the name, case-insensitive */
  name?: string;
  /** unnamed identities before named ones (each group largest first) */
  unnamedFirst?: boolean;
  /** include identities a user hid */
  includeHidden?: boolean;
}

/** A user correction as the undo list shows it; `body` holds what undoing it needs. */
export interface UserAction {
  id: number;
  kind: string;
  summary: string;
  body: unknown;
  /** the action this one undoes (kind 'undo') */
  undoes: number | null;
  /** the undo action that undid this one, if any */
  undoneBy: number | null;
  createdAt: string;
}

/** An erased photo: never analysed again (by path or by content) unless the user asks for it. */
export interface Tombstone {
  id: number;
  photoId: string;
  uri: string;
  contentHash: string | null;
  cause: string;
  erasedAt: string;
}

/**
 * The people view's part of the store (migration 2): the grid query that stays fast at 10,000
 * identities (one indexed ORDER BY … LIMIT, covers and photo counts only for the page shown), the
 * user-action log (append-only: an undo is a new row pointing at the action it undoes) and the
 * tombstones of erased photos. It shares the store's connection, so it takes part in its transactions.
 */
export class PeopleStore {
  private readonly statements = new Map<string, Database.Statement>();

  constructor(private readonly db: Database.Database) {}

  private sql(source: string): Database.Statement {
    let stmt = this.statements.get(source);
    if (!stmt) this.statements.set(source, (stmt = this.db.prepare(source)));
    return stmt;
  }

  // ---- the grid --------------------------------------------------------------------------------

  personPage(q: PersonPageQuery): { total: number; people: PersonCard[] } {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: q.limit, offset: q.offset };
    if (!q.includeHidden) where.push('hidden = 0');
    if (q.name) {
      where.push(`name LIKE @name ESCAPE '\\'`);
      params.name = '%' + q.name.replace(/[\\%_]/g, (c) => '\\' + c) + '%';
    }
    const filter = where.length ? 'WHERE ' + where.join(' AND ') : '';
    const total = (
      this.db.prepare(`SELECT count(*) AS n FROM identities ${filter}`).get(params) as { n: number }
    ).n;
    const order = (q.unnamedFirst ? '(name IS NOT NULL), ' : '') + 'face_count DESC, identity_id';
    // only columns of the covering index here; the chosen cover is read for the page's rows alone
    const rows = this.db
      .prepare(
        `SELECT identity_id, name, face_count, hidden FROM identities ${filter}
         ORDER BY ${order} LIMIT @limit OFFSET @offset`,
      )
      .all(params) as { identity_id: string; name: string | null; face_count: number; hidden: number }[];
    const chosen = this.sql('SELECT cover_face_id FROM identities WHERE identity_id = ?').pluck();
    const people = rows.map((r) => ({
      identityId: r.identity_id,
      name: r.name,
      faceCount: r.face_count,
      photoCount: this.photoCount(r.identity_id),
      hidden: r.hidden === 1,
      coverFaceId: this.coverOf(r.identity_id, chosen.get(r.identity_id) as string | null),
    }));
    return { total, people };
  }

  photoCount(identityId: string): number {
    return (
      this.sql('SELECT count(DISTINCT photo_id) AS n FROM faces WHERE identity_id = ?').get(identityId) as {
        n: number;
      }
    ).n;
  }

  /** the chosen cover while it is still one of the identity's faces, else the best-quality face */
  coverOf(identityId: string, chosen: string | null): string | null {
    if (chosen) {
      const still = this.sql('SELECT 1 FROM faces WHERE face_id = ? AND identity_id = ?').get(
        chosen,
        identityId,
      );
      if (still) return chosen;
    }
    const best = this.sql(
      'SELECT face_id FROM faces WHERE identity_id = ? ORDER BY kept DESC, quality DESC, face_id LIMIT 1',
    ).get(identityId) as { face_id: string } | undefined;
    return best?.face_id ?? null;
  }

  /** names of the named identities other than `except` (for "merge by name"), sorted */
  names(except?: string): string[] {
    const rows = this.sql(
      'SELECT DISTINCT name FROM identities WHERE name IS NOT NULL AND identity_id != ? ORDER BY name LIMIT 5000',
    )
      .raw()
      .all(except ?? '') as [string][];
    return rows.map((r) => r[0]);
  }

  /** identities of exactly this name, case-insensitive */
  findByName(name: string): string[] {
    return (
      this.sql('SELECT identity_id FROM identities WHERE name = ? COLLATE NOCASE ORDER BY identity_id')
        .raw()
        .all(name) as [string][]
    ).map((r) => r[0]);
  }

  setHidden(identityId: string, hidden: boolean): void {
    this.sql('UPDATE identities SET hidden = ? WHERE identity_id = ?').run(hidden ? 1 : 0, identityId);
  }

  setCover(identityId: string, faceId: string | null): void {
    this.sql('UPDATE identities SET cover_face_id = ? WHERE identity_id = ?').run(faceId, identityId);
  }

  /** Kept faces no identity holds, best quality first (the review queue). */
  unassignedFaceIds(limit: number, offset: number): { total: number; faceIds: string[] } {
    const total = this.unassignedCount();
    const faceIds = (
      this.sql(
        'SELECT face_id FROM faces INDEXED BY faces_unassigned WHERE kept = 1 AND identity_id IS NULL ORDER BY quality DESC, face_id LIMIT ? OFFSET ?',
      )
        .raw()
        .all(limit, offset) as [string][]
    ).map((r) => r[0]);
    return { total, faceIds };
  }

  /** how many faces wait in Review (every page's menu shows it; a partial index answers it) */
  unassignedCount(): number {
    return (
      this.sql(
        'SELECT count(*) AS n FROM faces INDEXED BY faces_unassigned WHERE kept = 1 AND identity_id IS NULL',
      ).get() as {
        n: number;
      }
    ).n;
  }

  // ---- user actions -----------------------------------------------------------------------------

  addAction(a: { kind: string; summary: string; body: unknown; undoes?: number }): number {
    return Number(
      this.sql(
        'INSERT INTO user_actions (kind, summary, body, undoes, created_at) VALUES (?, ?, ?, ?, ?)',
      ).run(a.kind, a.summary, JSON.stringify(a.body), a.undoes ?? null, new Date().toISOString())
        .lastInsertRowid,
    );
  }

  getAction(id: number): UserAction | undefined {
    const row = this.sql(`${ACTION_SELECT} WHERE a.id = ?`).get(id) as ActionRow | undefined;
    return row && toAction(row);
  }

  /** newest first */
  listActions(limit: number): UserAction[] {
    return (this.sql(`${ACTION_SELECT} ORDER BY a.id DESC LIMIT ?`).all(limit) as ActionRow[]).map(toAction);
  }

  // ---- tombstones -------------------------------------------------------------------------------

  addTombstone(t: { photoId: string; uri: string; contentHash: string | null; cause: string }): void {
    this.sql(
      'INSERT INTO tombstones (photo_id, uri, content_hash, cause, erased_at) VALUES (?, ?, ?, ?, ?)',
    ).run(t.photoId, t.uri, t.contentHash, t.cause, new Date().toISOString());
  }

  /** Is a photo erased: by its id, its path, or (a copy elsewhere) its content? */
  erased(p: { photoId?: string; uri?: string; contentHash?: string | null }): Tombstone | undefined {
    const row = this.sql(
      `SELECT * FROM tombstones WHERE photo_id = @photoId OR uri = @uri OR content_hash = @contentHash
       ORDER BY id DESC LIMIT 1`,
    ).get({ photoId: p.photoId ?? null, uri: p.uri ?? null, contentHash: p.contentHash ?? null }) as
      TombstoneRow | undefined;
    return row && toTombstone(row);
  }

  /** The user brought an erased photo back (`--include-erased`): its tombstones go. */
  removeTombstones(p: { photoId: string; uri: string; contentHash: string | null }): number {
    return this.sql('DELETE FROM tombstones WHERE photo_id = ? OR uri = ? OR content_hash = ?').run(
      p.photoId,
      p.uri,
      p.contentHash,
    ).changes;
  }

  listTombstones(): Tombstone[] {
    return (this.sql('SELECT * FROM tombstones ORDER BY id').all() as TombstoneRow[]).map(toTombstone);
  }
}

const ACTION_SELECT = `SELECT a.id, a.kind, a.summary, a.body, a.undoes, a.created_at,
  (SELECT u.id FROM user_actions u WHERE u.undoes = a.id ORDER BY u.id LIMIT 1) AS undone_by
  FROM user_actions a`;

interface ActionRow {
  id: number;
  kind: string;
  summary: string;
  body: string;
  undoes: number | null;
  undone_by: number | null;
  created_at: string;
}

function toAction(r: ActionRow): UserAction {
  return {
    id: r.id,
    kind: r.kind,
    summary: r.summary,
    body: JSON.parse(r.body) as unknown,
    undoes: r.undoes,
    undoneBy: r.undone_by,
    createdAt: r.created_at,
  };
}

interface TombstoneRow {
  id: number;
  photo_id: string;
  uri: string;
  content_hash: string | null;
  cause: string;
  erased_at: string;
}

function toTombstone(r: TombstoneRow): Tombstone {
  return {
    id: r.id,
    photoId: r.photo_id,
    uri: r.uri,
    contentHash: r.content_hash,
    cause: r.cause,
    erasedAt: r.erased_at,
  };
}
