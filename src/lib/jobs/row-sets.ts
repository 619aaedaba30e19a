/**
 * Sets of spreadsheet row numbers kept in a Task (rows finished out of order, rows waiting for
 * their parents) as ranges: "2-500,502,510-520". Rows come in runs, so this stays short.
 */

/** How an empty set is written (a FHIR string may not be empty). */
const NO_ROWS = 'none';

export function encodeRows(rows: Iterable<number>): string {
  const sorted = [...new Set(rows)].sort((a, b) => a - b);
  if (sorted.length === 0) {
    return NO_ROWS;
  }
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) {
      j++;
    }
    parts.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The rows of an encoded set; malformed parts are an error (a Task edited by hand). */
export function decodeRows(text: string | undefined): Set<number> {
  const rows = new Set<number>();
  if (text === NO_ROWS) {
    return rows;
  }
  for (const part of (text ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!match) {
      throw new Error(`malformed row list in the Task: '${part.slice(0, 20)}'`);
    }
    const from = Number(match[1]);
    const to = Number(match[2] ?? match[1]);
    if (to < from || to - from > 10_000_000) {
      throw new Error(`malformed row range in the Task: '${part.slice(0, 30)}'`);
    }
    for (let row = from; row <= to; row++) {
      rows.add(row);
    }
  }
  return rows;
}
