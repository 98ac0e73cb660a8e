/**
 * The web app's pages, rendered on the server as plain HTML: every action is a form (it works
 * without JavaScript; app.js only adds keyboard shortcuts, drag-and-drop and confirm prompts).
 * Pure functions of the data they are given, so they are easy to test and to read.
 */
import type { PersonCard, UserAction } from '../../indexers/store/people.ts';
import type { Suggestion } from '../../clustering/suggestions.ts';
import { unassignedReasonText, type UnassignedReason } from '../../schemas/face.ts';

export interface Chrome {
  title: string;
  /** the nav entry to mark as current */
  section: 'people' | 'review' | 'search' | 'undo' | 'none';
  csrf: string;
  /** unassigned faces waiting in Review (shown in the nav) */
  reviewCount: number;
  signedIn: boolean;
  /** a one-line outcome of the last action, with its undo button */
  notice?: { text: string; actionId?: number };
}

export function esc(s: string | number): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

const u = encodeURIComponent;

export function personName(p: { name: string | null }): string {
  return p.name ?? 'Unnamed';
}

function thumb(faceId: string | null, alt: string, size = 112, lazy = true): string {
  if (!faceId)
    return `<span class="thumb empty" style="width:${size}px;height:${size}px" aria-hidden="true"></span>`;
  return `<img class="thumb" src="/thumbs/${u(faceId)}.jpg" alt="${esc(alt)}" width="${size}" height="${size}"${lazy ? ' loading="lazy"' : ''}>`;
}

function csrfField(csrf: string): string {
  return `<input type="hidden" name="_csrf" value="${esc(csrf)}">`;
}

/** A one-button form (POST, CSRF token included). */
function button(
  action: string,
  label: string,
  csrf: string,
  opts: { fields?: Record<string, string>; cls?: string; key?: string; confirm?: string } = {},
): string {
  const fields = Object.entries(opts.fields ?? {})
    .map(([k, v]) => `<input type="hidden" name="${esc(k)}" value="${esc(v)}">`)
    .join('');
  const confirm = opts.confirm ? ` data-confirm="${esc(opts.confirm)}"` : '';
  const key = opts.key ? ` data-key="${esc(opts.key)}" aria-keyshortcuts="${esc(opts.key)}"` : '';
  return `<form method="post" action="${esc(action)}" class="inline"${confirm}>${csrfField(csrf)}${fields}<button type="submit" class="${esc(opts.cls ?? '')}"${key}>${label}</button></form>`;
}

export function layout(c: Chrome, body: string): string {
  const nav = (href: string, key: Chrome['section'], label: string) =>
    `<a href="${href}"${c.section === key ? ' aria-current="page"' : ''}>${label}</a>`;
  const notice = c.notice
    ? `<div class="notice" role="status"><span>${esc(c.notice.text)}</span>${
        c.notice.actionId ? button(`/undo/${c.notice.actionId}`, 'Undo', c.csrf, { cls: 'link' }) : ''
      }</div>`
    : '';
  const logout = c.signedIn ? button('/logout', 'Sign out', c.csrf, { cls: 'link' }) : '';
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(c.title)} · facepipe</title>
<link rel="stylesheet" href="/assets/app.css">
<script type="module" src="/assets/app.js"></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<a class="brand" href="/">facepipe</a>
<nav aria-label="Main">${nav('/', 'people', 'People')}${nav('/review', 'review', `Review <span class="count">${c.reviewCount}</span>`)}${nav('/search', 'search', 'Search')}${nav('/undo', 'undo', 'Undo')}</nav>
${logout}
</header>
<main id="main" tabindex="-1">
${notice}
${body}
</main>
</body>
</html>
`;
}

// ---------------------------------------------------------------- login

export function loginPage(opts: { next: string; error?: string }): string {
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · facepipe</title>
<link rel="stylesheet" href="/assets/app.css">
</head>
<body class="login">
<main id="main">
<h1>facepipe</h1>
<p>This server needs its access token (the one <code>facepipe serve</code> was started with).</p>
<form method="post" action="/login" class="card login-form">
<input type="hidden" name="next" value="${esc(opts.next)}">
<label for="token">Access token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus${opts.error ? ' aria-invalid="true" aria-describedby="login-error"' : ''}>
${opts.error ? `<p id="login-error" class="error" role="alert">${esc(opts.error)}</p>` : ''}
<button type="submit" class="primary">Sign in</button>
</form>
</main>
</body>
</html>
`;
}

// ---------------------------------------------------------------- people

export interface PeopleView {
  total: number;
  people: PersonCard[];
  page: number;
  pages: number;
  q: string;
  unnamedFirst: boolean;
  includeHidden: boolean;
}

export function peoplePage(c: Chrome, v: PeopleView): string {
  const query = (page: number) => {
    const p = new URLSearchParams();
    if (v.q) p.set('q', v.q);
    if (v.unnamedFirst) p.set('unnamed', '1');
    if (v.includeHidden) p.set('hidden', '1');
    if (page > 1) p.set('page', String(page));
    const s = p.toString();
    return s ? `/?${s}` : '/';
  };
  const cards = v.people
    .map((p) => {
      const name = personName(p);
      return `<li class="card person${p.name ? '' : ' unnamed'}${p.hidden ? ' hidden-person' : ''}" data-identity="${esc(p.identityId)}">
<a href="/person/${u(p.identityId)}">${thumb(p.coverFaceId, `Cover face of ${name}`, 112, true)}
<span class="name">${esc(name)}</span></a>
<span class="meta">${p.faceCount} face${p.faceCount === 1 ? '' : 's'} · ${p.photoCount} photo${p.photoCount === 1 ? '' : 's'}${p.hidden ? ' · hidden' : ''}</span>
</li>`;
    })
    .join('\n');
  const pager =
    v.pages > 1
      ? `<nav class="pager" aria-label="Pages">${v.page > 1 ? `<a href="${esc(query(v.page - 1))}" rel="prev">← Previous</a>` : ''}<span>Page ${v.page} of ${v.pages}</span>${v.page < v.pages ? `<a href="${esc(query(v.page + 1))}" rel="next">Next →</a>` : ''}</nav>`
      : '';
  return layout(
    c,
    `<div class="heading"><h1>People</h1><p class="sub">${v.total} ${v.total === 1 ? 'person' : 'people'}${v.q ? ` matching “${esc(v.q)}”` : ''}, largest first</p></div>
<form method="get" action="/" class="filters" role="search">
<label for="q">Filter by name</label>
<input id="q" name="q" type="search" value="${esc(v.q)}" placeholder="e.g. Penny">
<label class="check"><input type="checkbox" name="unnamed" value="1"${v.unnamedFirst ? ' checked' : ''}> Unnamed first</label>
<label class="check"><input type="checkbox" name="hidden" value="1"${v.includeHidden ? ' checked' : ''}> Show hidden</label>
<button type="submit">Apply</button>
</form>
${v.people.length ? `<ul class="grid people" aria-label="People">\n${cards}\n</ul>` : '<p class="empty-state">No people here yet.</p>'}
${pager}`,
  );
}

// ---------------------------------------------------------------- person

export interface PersonFaceView {
  faceId: string;
  photoId: string;
  photoName: string;
  quality: number;
  cover: boolean;
}

export interface PersonView {
  identityId: string;
  name: string | null;
  hidden: boolean;
  faceCount: number;
  photoCount: number;
  faces: PersonFaceView[];
  similar: (Suggestion & { coverFaceId: string | null })[];
  /** named people, for "merge with … by name" */
  names: string[];
}

export function personPage(c: Chrome, v: PersonView): string {
  const name = personName(v);
  const base = `/person/${u(v.identityId)}`;
  const faces = v.faces
    .map(
      (f, i) => `<li class="card face" data-face-id="${esc(f.faceId)}">
<label class="pick"><input type="checkbox" name="face" value="${esc(f.faceId)}" form="faces-form"> <span class="sr-only">Select face ${i + 1}</span>${thumb(f.faceId, `Face ${i + 1} of ${name}, from ${f.photoName}`)}</label>
<span class="meta"><a href="/photo/${u(f.photoId)}" title="${esc(f.photoName)}">${esc(shortName(f.photoName))}</a> · q ${f.quality.toFixed(2)}</span>
${f.cover ? '<span class="badge">cover</span>' : `<button type="submit" form="faces-form" name="cover" value="${esc(f.faceId)}" class="link small">Use as cover</button>`}
</li>`,
    )
    .join('\n');
  const similar = v.similar.length
    ? `<ul class="similar">${v.similar
        .map(
          (s) => `<li data-identity="${esc(s.identityId)}">
<a href="/person/${u(s.identityId)}">${thumb(s.coverFaceId, `Cover face of ${personName(s)}`, 56)}<span>${esc(personName(s))}</span></a>
<span class="score" title="template cosine">${s.score.toFixed(2)}</span>
${button(`${base}/merge`, 'Same person', c.csrf, { fields: { other: s.identityId } })}
${button(`${base}/different`, 'Different people', c.csrf, { fields: { other: s.identityId }, cls: 'secondary' })}
</li>`,
        )
        .join('\n')}</ul>`
    : '<p class="sub">No one else looks similar.</p>';
  return layout(
    c,
    `<div class="heading person-head">
<form method="post" action="${base}/rename" class="rename">
${csrfField(c.csrf)}
<label for="person-name" class="sr-only">Name</label>
<input id="person-name" name="name" value="${esc(v.name ?? '')}" placeholder="Add a name" maxlength="200" class="title-input" aria-label="Name of this person">
<button type="submit" class="primary">Save name</button>
</form>
<p class="sub">${v.faceCount} faces · ${v.photoCount} photos${v.hidden ? ' · hidden' : ''} · <code>${esc(v.identityId)}</code></p>
</div>
<section aria-labelledby="faces-h">
<h2 id="faces-h">Faces <span class="sub">best quality first</span></h2>
<form id="faces-form" method="post" action="${base}/faces" class="toolbar">
${csrfField(c.csrf)}
<button type="submit" name="action" value="move_out">Not this person</button>
<label for="new-name" class="sr-only">Name of the new person</label>
<input id="new-name" name="newName" placeholder="New person's name (optional)" maxlength="200">
<button type="submit" name="action" value="split">New person from these</button>
<span class="hint">Select faces first.</span>
</form>
<ul class="grid faces" aria-label="Faces of ${esc(name)}">
${faces}
</ul>
</section>
<section aria-labelledby="similar-h">
<h2 id="similar-h">Looks similar</h2>
${similar}
<form method="post" action="${base}/merge" class="merge">
${csrfField(c.csrf)}
<label for="merge-other">Merge with a person by name</label>
<input id="merge-other" name="other" list="people-names" required placeholder="Name">
<datalist id="people-names">${v.names.map((n) => `<option value="${esc(n)}">`).join('')}</datalist>
<button type="submit">Merge into ${esc(name)}</button>
</form>
</section>
<section aria-labelledby="manage-h" class="manage">
<h2 id="manage-h">Manage</h2>
${button(`${base}/hide`, v.hidden ? 'Show in People again' : 'Hide this person', c.csrf, { fields: { hidden: v.hidden ? '0' : '1' }, cls: 'secondary' })}
<a class="button danger" href="${base}/erase">Erase this person…</a>
</section>`,
  );
}

export function confirmPage(
  c: Chrome,
  v: {
    heading: string;
    text: string;
    action: string;
    options?: { name: string; label: string }[];
    back: string;
  },
): string {
  const options = (v.options ?? [])
    .map(
      (o) =>
        `<label class="check"><input type="checkbox" name="${esc(o.name)}" value="1"> ${esc(o.label)}</label>`,
    )
    .join('');
  return layout(
    c,
    `<div class="card confirm">
<h1>${esc(v.heading)}</h1>
<p>${esc(v.text)}</p>
<form method="post" action="${esc(v.action)}">
${csrfField(c.csrf)}
<input type="hidden" name="confirm" value="yes">
${options}
<div class="row"><button type="submit" class="danger" autofocus>Erase</button> <a class="button secondary" href="${esc(v.back)}">Cancel</a></div>
</form>
</div>`,
  );
}

// ---------------------------------------------------------------- review

export interface ReviewItem {
  faceId: string;
  photoId: string;
  photoName: string;
  quality: number;
  /** as stored by the step that left the face out; null: not decided yet (a store from before) */
  reason: UnassignedReason | null;
  suggestion: (Suggestion & { coverFaceId: string | null }) | null;
}

export function reviewPage(c: Chrome, v: { total: number; items: ReviewItem[]; offset: number }): string {
  const items = v.items
    .map((f, i) => {
      const s = f.suggestion;
      const action = `/review/${u(f.faceId)}`;
      const fields = { focus: String(i) };
      return `<li class="card review-item" tabindex="0" data-face-id="${esc(f.faceId)}"${s ? ` data-suggested="${esc(s.identityId)}"` : ''} aria-label="Face ${v.offset + i + 1}: ${esc(unassignedReasonText(f.reason))}${s ? `, suggested ${esc(personName(s))}` : ''}">
<div class="pair">
<figure>${thumb(f.faceId, `Unassigned face from ${f.photoName}`, 112, false)}<figcaption>This face</figcaption></figure>
<span class="arrow" aria-hidden="true">→</span>
<figure>${s ? `<a href="/person/${u(s.identityId)}" class="suggested">${thumb(s.coverFaceId, `Cover face of ${personName(s)}`, 112, false)}</a>` : '<span class="thumb empty" aria-hidden="true"></span>'}<figcaption>${s ? esc(personName(s)) : 'No one'}</figcaption></figure>
</div>
<p><span class="reason reason-${f.reason ?? 'undecided'}" data-reason="${f.reason ?? ''}">${esc(f.reason?.replaceAll('_', ' ') ?? 'undecided')}</span> <a href="/photo/${u(f.photoId)}">${esc(shortName(f.photoName))}</a> · q ${f.quality.toFixed(2)}</p>
<p class="why">${esc(unassignedReasonText(f.reason))}</p>
<p class="suggestion">${s ? `Suggested: <strong>${esc(personName(s))}</strong> <span class="score">${s.score.toFixed(2)}</span>` : 'No suggestion'}</p>
<div class="row">
${s ? button(action, 'Accept <kbd>A</kbd>', c.csrf, { fields: { ...fields, action: 'accept', identityId: s.identityId }, cls: 'primary', key: 'a' }) : ''}
${s ? button(action, 'Reject <kbd>R</kbd>', c.csrf, { fields: { ...fields, action: 'reject', identityId: s.identityId }, key: 'r' }) : ''}
${button(action, 'New person <kbd>N</kbd>', c.csrf, { fields: { ...fields, action: 'new' }, cls: 'secondary', key: 'n' })}
</div>
</li>`;
    })
    .join('\n');
  return layout(
    c,
    `<div class="heading"><h1>Review</h1><p class="sub">${v.total} face${v.total === 1 ? '' : 's'} without a person. Keys: <kbd>J</kbd>/<kbd>K</kbd> or arrows to move, <kbd>A</kbd> accept, <kbd>R</kbd> reject, <kbd>N</kbd> new person.</p></div>
${v.items.length ? `<ol class="grid review" aria-label="Faces to review" data-keyboard-list>\n${items}\n</ol>` : '<p class="empty-state">Nothing to review: every face has a person.</p>'}`,
  );
}

// ---------------------------------------------------------------- photo

export interface PhotoView {
  photoId: string;
  name: string;
  width: number;
  height: number;
  faces: {
    faceId: string;
    bbox: [number, number, number, number];
    identityId: string | null;
    name: string | null;
    kept: boolean;
  }[];
}

export function photoPage(c: Chrome, v: PhotoView): string {
  const pct = (x: number, of: number) => `${((100 * x) / of).toFixed(3)}%`;
  const boxes = v.faces
    .map((f, i) => {
      const [x, y, w, h] = f.bbox;
      const style = `left:${pct(x, v.width)};top:${pct(y, v.height)};width:${pct(w, v.width)};height:${pct(h, v.height)}`;
      const label = f.identityId ? personName(f) : f.kept ? 'No person yet' : 'Low quality (dropped)';
      const href = f.identityId ? `/person/${u(f.identityId)}` : '/review';
      return `<a class="box${f.identityId ? '' : ' none'}" style="${style}" href="${href}" data-face-id="${esc(f.faceId)}" aria-label="Face ${i + 1}: ${esc(label)}"><span>${esc(label)}</span></a>`;
    })
    .join('');
  return layout(
    c,
    `<div class="heading"><h1>${esc(v.name)}</h1><p class="sub">${v.width}×${v.height} · ${v.faces.length} face${v.faces.length === 1 ? '' : 's'}</p></div>
<figure class="photo" style="aspect-ratio:${v.width}/${v.height}">
<img src="/photo/${u(v.photoId)}/image" alt="${esc(v.name)}" width="${v.width}" height="${v.height}">
${boxes}
</figure>
<section class="manage"><a class="button danger" href="/photo/${u(v.photoId)}/erase">Erase this photo…</a></section>`,
  );
}

// ---------------------------------------------------------------- search

export interface SearchFaceView {
  crop: string | null;
  quality: number;
  kept: boolean;
  matches: { identityId: string; name: string | null; score: number; coverFaceId: string | null }[];
}

export function searchPage(
  c: Chrome,
  v: { available: boolean; faces?: SearchFaceView[]; fileName?: string },
): string {
  const results =
    v.faces === undefined
      ? ''
      : v.faces.length === 0
        ? `<p class="empty-state" role="status">No face found in ${esc(v.fileName ?? 'the photo')}.</p>`
        : `<h2>${v.faces.length} face${v.faces.length === 1 ? '' : 's'} in ${esc(v.fileName ?? 'the photo')}</h2><ol class="search-results">${v.faces
            .map(
              (f, i) => `<li class="card search-face">
${f.crop ? `<img class="thumb" src="${f.crop}" alt="Face ${i + 1} of the photo" width="112" height="112">` : ''}
<div><p>Face ${i + 1} · q ${f.quality.toFixed(2)}${f.kept ? '' : ' · too low quality to match'}</p>
${f.matches.length ? `<ol class="matches">${f.matches.map((m) => `<li><a href="/person/${u(m.identityId)}">${thumb(m.coverFaceId, `Cover face of ${personName(m)}`, 56)}<span>${esc(personName(m))}</span></a> <span class="score">${m.score.toFixed(2)}</span></li>`).join('')}</ol>` : '<p class="sub">No match.</p>'}</div>
</li>`,
            )
            .join('\n')}</ol>`;
  return layout(
    c,
    `<div class="heading"><h1>Search</h1><p class="sub">Who is in this photo? Drop a photo here or choose one.</p></div>
${
  v.available
    ? `<form method="post" action="/search?_csrf=${u(c.csrf)}" enctype="multipart/form-data" class="dropzone" data-dropzone>
<label for="image">Photo to search with</label>
<input id="image" name="image" type="file" accept="image/*" required>
<button type="submit" class="primary">Search</button>
</form>`
    : '<p class="error">This server was started without models: search by photo is unavailable.</p>'
}
${results}`,
  );
}

// ---------------------------------------------------------------- undo

export function undoPage(c: Chrome, actions: UserAction[]): string {
  const rows = actions
    .map(
      (
        a,
      ) => `<li class="action${a.undoneBy ? ' undone' : ''}" data-action-id="${a.id}" data-kind="${esc(a.kind)}">
<time datetime="${esc(a.createdAt)}">${esc(a.createdAt.replace('T', ' ').slice(0, 19))}</time>
<span class="summary">${esc(a.summary)}</span>
${a.kind === 'undo' ? '' : a.undoneBy ? '<span class="badge">undone</span>' : button(`/undo/${a.id}`, 'Undo', c.csrf)}
</li>`,
    )
    .join('\n');
  return layout(
    c,
    `<div class="heading"><h1>Undo</h1><p class="sub">Your latest corrections, newest first. Undoing one appends its reverse; nothing is rewritten.</p></div>
${actions.length ? `<ol class="actions">\n${rows}\n</ol>` : '<p class="empty-state">No corrections yet.</p>'}`,
  );
}

export function errorPage(c: Chrome, status: number, message: string): string {
  return layout(
    c,
    `<div class="card confirm"><h1>${status === 404 ? 'Not found' : 'That did not work'}</h1><p role="alert">${esc(message)}</p><p><a href="/">Back to People</a></p></div>`,
  );
}

function shortName(file: string): string {
  const parts = file.split(/[\\/]/);
  return parts.slice(-2).join('/');
}
