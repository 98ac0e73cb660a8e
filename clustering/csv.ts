/** `id,cluster` CSV files (header required); an empty cluster means unassigned or dropped. */

function quote(field: string): string {
  return /[",\r\n]/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

export function formatAssignments(ids: readonly string[], clusters: readonly (string | null)[]): string {
  const lines = ['id,cluster'];
  for (let i = 0; i < ids.length; i++)
    lines.push(`${quote(ids[i])},${clusters[i] === null ? '' : quote(clusters[i]!)}`);
  return lines.join('\n') + '\n';
}

/** splits one CSV line into fields (RFC 4180 quoting, no embedded newlines) */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inQuotes = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (inQuotes) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') inQuotes = false;
      else cur += ch;
    } else if (ch === '"') inQuotes = true;
    else if (ch === ',') {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

export function parseAssignments(text: string, source = 'csv'): Map<string, string | null> {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0);
  const header = lines.shift();
  if (
    !header ||
    splitCsvLine(header)
      .map((h) => h.trim().toLowerCase())
      .join(',') !== 'id,cluster'
  ) {
    throw new Error(`${source}: expected header "id,cluster", got ${JSON.stringify(header ?? '')}`);
  }
  const out = new Map<string, string | null>();
  lines.forEach((line, i) => {
    const [id, cluster, ...rest] = splitCsvLine(line);
    if (id === undefined || id === '' || cluster === undefined || rest.length > 0)
      throw new Error(`${source}:${i + 2}: expected "id,cluster", got ${JSON.stringify(line)}`);
    if (out.has(id)) throw new Error(`${source}:${i + 2}: duplicate id ${JSON.stringify(id)}`);
    out.set(id, cluster === '' ? null : cluster);
  });
  return out;
}
