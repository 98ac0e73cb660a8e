/**
 * The streaming side's own small state in the data dir (`<data>/stream.sqlite`), beside the face
 * store: the dead letters the indexer has seen (one row per original message, so a re-sent dead
 * letter is counted once) and how far the store's identity-event log has been published.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { DeadLetter } from '../../schemas/deadLetter.ts';

export const STREAM_STATE_FILE = 'stream.sqlite';

export interface DeadLetterCounts {
  total: number;
  byCode: Record<string, number>;
}

export class StreamState {
  private readonly db: Database.Database;

  constructor(dataDir: string, opts: { readonly?: boolean } = {}) {
    const file = path.join(dataDir, STREAM_STATE_FILE);
    this.db = new Database(file, { readonly: opts.readonly ?? false, fileMustExist: opts.readonly ?? false });
    if (opts.readonly) return;
    this.db.pragma('journal_mode = WAL');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS dead_letters (
        id TEXT PRIMARY KEY, photo_id TEXT, stage TEXT NOT NULL, code TEXT NOT NULL,
        reason TEXT NOT NULL, attempts INTEGER NOT NULL, at TEXT NOT NULL, body TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    `);
  }

  static exists(dataDir: string): boolean {
    return existsSync(path.join(dataDir, STREAM_STATE_FILE));
  }

  /** Records dead letters; ones already recorded (same original message) are ignored. */
  recordDeadLetters(list: DeadLetter[]): number {
    const insert = this.db.prepare(
      'INSERT OR IGNORE INTO dead_letters (id, photo_id, stage, code, reason, attempts, at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    );
    let added = 0;
    this.db.transaction(() => {
      for (const d of list) {
        added += insert.run(
          d.id,
          d.photoId ?? null,
          d.stage,
          d.code,
          d.reason,
          d.attempts,
          d.at,
          JSON.stringify(d),
        ).changes;
      }
    })();
    return added;
  }

  deadLetterCounts(): DeadLetterCounts {
    const rows = this.db.prepare('SELECT code, count(*) AS n FROM dead_letters GROUP BY code').all() as {
      code: string;
      n: number;
    }[];
    const byCode = Object.fromEntries(rows.map((r) => [r.code, r.n]));
    return { total: rows.reduce((s, r) => s + r.n, 0), byCode };
  }

  listDeadLetters(): DeadLetter[] {
    return (this.db.prepare('SELECT body FROM dead_letters ORDER BY rowid').all() as { body: string }[]).map(
      (r) => JSON.parse(r.body) as DeadLetter,
    );
  }

  /** Sequence of the last identity event of the store's log already on the identity-events topic. */
  publishedEventSeq(): number {
    const row = this.db
      .prepare("SELECT value FROM meta WHERE key = 'identity_events_published_seq'")
      .get() as { value: string } | undefined;
    return row ? Number(row.value) : 0;
  }

  setPublishedEventSeq(seq: number): void {
    this.db
      .prepare(
        "INSERT INTO meta (key, value) VALUES ('identity_events_published_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
      )
      .run(String(seq));
  }

  close(): void {
    this.db.close();
  }
}
