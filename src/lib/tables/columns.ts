/**
 * Normalises a header cell: case, surrounding spaces and inner spaces/hyphens do not matter
 * ("Patient ID" and "patient-id" both read as patient_id).
 */
export function normalizeColumnName(name: string): string {
  return name
    .replace(/^\uFEFF/, '')
    .trim()
    .toLowerCase()
    .replace(/[\s-]+/g, '_');
}
