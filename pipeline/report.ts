import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../core/files.ts';
import type { FaceDatabase, StoredFace, StoredPhoto } from '../indexers/types.ts';
import { unassignedReasonText } from '../schemas/face.ts';

/** Thumbnails are shown at half size; the JPEG keeps the full 112 px. */
const SHOWN_SIZE = 56;

export function thumbPath(dataDir: string, faceId: string): string {
  return path.join(dataDir, 'thumbs', `${faceId}.jpg`);
}

/** Erases the thumbnails of forgotten faces (they are biometric data too). */
export function removeThumbnails(dataDir: string, faceIds: Iterable<string>): void {
  for (const id of faceIds) rmSync(thumbPath(dataDir, id), { force: true });
}

/** Rewrites report.html if there is one, so an erased face or photo no longer appears in it. */
export function refreshReport(db: FaceDatabase, dataDir: string): void {
  if (existsSync(path.join(dataDir, 'report.html'))) writeReport(db, dataDir);
}

export interface ReportOptions {
  /** page title; defaults to "facepipe report" */
  title?: string;
  /** line shown under the title, e.g. the run summary */
  subtitle?: string;
}

/**
 * Writes `<data>/report.html`: one row per identity with a thumbnail per kept face, the kept faces
 * no identity holds, the dropped low-quality faces with their magnitudes, and the failed photos.
 * Thumbnails are relative links to `thumbs/<faceId>.jpg`, so the report and its images move together.
 */
export function writeReport(db: FaceDatabase, dataDir: string, opts: ReportOptions = {}): string {
  const file = path.join(dataDir, 'report.html');
  // through a temp file: a full disk leaves the previous report, and no temp file
  writeFileAtomic(file, renderReport(db, dataDir, opts));
  return file;
}

export function renderReport(db: FaceDatabase, dataDir: string, opts: ReportOptions = {}): string {
  const photos = new Map(db.listPhotos().map((p) => [p.photoId, p]));
  const title = opts.title ?? 'facepipe report';
  const counts = db.counts();
  const identities = db
    .listIdentities()
    .map((identity) => ({ identity, faces: db.listFaces({ kept: true, identityId: identity.identityId }) }))
    .filter((x) => x.faces.length > 0)
    .sort(
      (a, b) => b.faces.length - a.faces.length || a.identity.identityId.localeCompare(b.identity.identityId),
    );
  const unassigned = db.listFaces({ kept: true, identityId: null });
  const dropped = db.listFaces({ kept: false });
  const failed = [...photos.values()].filter((p) => p.status === 'failed');
  const thumb = (f: StoredFace) => thumbnail(dataDir, f, photos.get(f.photoId));

  const parts: string[] = [];
  parts.push(`<h1>${esc(title)}</h1>`);
  if (opts.subtitle) parts.push(`<p>${esc(opts.subtitle)}</p>`);
  parts.push(
    `<p class="app">A static snapshot. To name people, merge, split and fix mistakes, open the people view: ` +
      `<code>facepipe serve --data ${esc(dataDir)}</code>, then <a href="http://127.0.0.1:8080/">http://127.0.0.1:8080/</a> ` +
      `(or <code>facepipe run … --open</code>).</p>`,
  );
  parts.push(
    `<p>${counts.photos} photos, ${counts.kept} faces kept, ${counts.dropped} dropped, ` +
      `${identities.length} identities (model ${esc(db.modelId)}).</p>`,
  );

  parts.push(`<h2>Identities (${identities.length})</h2>`);
  if (identities.length === 0) parts.push('<p>No identities.</p>');
  else {
    const rows = identities.map(({ identity, faces }) => {
      const photoIds = [...new Set(faces.map((f) => f.photoId))];
      const name = identity.name
        ? `<strong>${esc(identity.name)}</strong>`
        : `<span class="unnamed">Unnamed</span>`;
      return (
        `<tr id="${esc(anchor(identity.identityId))}" data-identity="${esc(identity.identityId)}">` +
        `<td>${name}<br><code>${esc(identity.identityId)}</code></td>` +
        `<td>${faces.length}</td><td class="photos">${photoIds.map((p) => photoLink(photos.get(p), p)).join(' ')}</td>` +
        `<td>${faces.map(thumb).join('')}</td></tr>`
      );
    });
    parts.push(table(['Person', 'Faces', 'Photos', 'Kept faces'], rows));
  }

  if (unassigned.length > 0) {
    parts.push(`<h2>Kept faces without a person (${unassigned.length})</h2>`);
    const rows = unassigned.map((f) => {
      const why = unassignedReasonText(f.unassignedReason);
      return (
        `<tr data-unassigned-face="${esc(f.faceId)}" data-reason="${esc(f.unassignedReason ?? '')}"><td>${thumb(f)}</td>` +
        `<td>${photoLink(photos.get(f.photoId), f.photoId)}</td><td>${f.quality.toFixed(2)}</td><td>${esc(why)}</td></tr>`
      );
    });
    parts.push(table(['Face', 'Photo', 'Quality', 'Why it has no person'], rows));
  }

  parts.push(`<h2>Dropped low-quality faces (${dropped.length})</h2>`);
  if (dropped.length === 0) parts.push('<p>None.</p>');
  else {
    const rows = dropped
      .sort((a, b) => a.magnitude - b.magnitude)
      .map(
        (f) =>
          `<tr data-dropped-face="${esc(f.faceId)}"><td>${thumb(f)}</td><td>${photoLink(photos.get(f.photoId), f.photoId)}</td>` +
          `<td>${f.faceIndex}</td><td>${f.magnitude.toFixed(1)}</td><td>${f.quality.toFixed(2)}</td><td>${esc(f.reason ?? '')}</td></tr>`,
      );
    parts.push(table(['Face', 'Photo', 'Index', 'Magnitude', 'Quality', 'Reason'], rows));
  }

  if (failed.length > 0) {
    parts.push(`<h2>Photos that could not be processed (${failed.length})</h2>`);
    const rows = failed.map((p) => `<tr><td>${esc(p.uri)}</td><td>${esc(p.error ?? '')}</td></tr>`);
    parts.push(table(['Photo', 'Reason'], rows));
  }

  return page(title, parts.join('\n'));
}

function thumbnail(dataDir: string, face: StoredFace, photo: StoredPhoto | undefined): string {
  const label = `${photoLabel(photo, face)} face ${face.faceIndex}, magnitude ${face.magnitude.toFixed(1)}`;
  const attrs = `data-face-id="${esc(face.faceId)}" title="${esc(label)}"`;
  // Faces stored by another path (e.g. the Kafka indexer) may have no crop on disk: show a placeholder.
  if (!existsSync(thumbPath(dataDir, face.faceId))) return `<span class="thumb missing" ${attrs}>?</span>`;
  return (
    `<img class="thumb" src="thumbs/${encodeURIComponent(face.faceId)}.jpg" alt="${esc(label)}" ` +
    `width="${SHOWN_SIZE}" height="${SHOWN_SIZE}" ${attrs}>`
  );
}

function photoLabel(photo: StoredPhoto | undefined, face: StoredFace): string {
  return photo?.uri ?? face.photoId;
}

/** The photo's file name, linked to the original (a file: URL for a local path). */
function photoLink(photo: StoredPhoto | undefined, photoId: string): string {
  if (!photo) return `<code>${esc(photoId)}</code>`;
  const href = /^[a-z][a-z0-9+.-]*:/i.test(photo.uri)
    ? photo.uri
    : pathToFileURL(path.resolve(photo.uri)).href;
  const name = path.basename(photo.uri.replace(/^file:\/\//, ''));
  return `<a href="${esc(href)}" title="${esc(photo.uri)}">${esc(name)}</a>`;
}

function anchor(id: string): string {
  return 'identity-' + id.replace(/[^A-Za-z0-9_-]/g, '_');
}

function table(headers: string[], rows: string[]): string {
  const head = headers.map((h) => `<th scope="col">${esc(h)}</th>`).join('');
  return `<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`;
}

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>
body { font-family: sans-serif; margin: 1.5em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
.thumb { width: ${SHOWN_SIZE}px; height: ${SHOWN_SIZE}px; margin: 1px; display: inline-block; }
.missing { background: #eee; text-align: center; line-height: ${SHOWN_SIZE}px; }
.unnamed { color: #555; font-style: italic; }
.photos { max-width: 24em; }
.app { background: #eef4ff; border: 1px solid #c7d7fe; padding: 8px 12px; }
</style>
</head>
<body>
${body}
</body>
</html>
`;
}

export function esc(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}
