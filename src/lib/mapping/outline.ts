import { normalizeColumnName } from '../tables/columns';
import type { ColumnDeclaration, WriteMode } from './format';
import { isResourceTypeName } from './fhir-elements';
import type { FileProblems } from './problems';
import { pointer } from './problems';
import { isPlainObject, isStringList, onlyMembers } from './shape';
import type { Template } from './templates';
import { compileTemplate } from './templates';

/** What other mappings need to know of a mapping before its elements are compiled: its name, columns, key, resources. */
export interface MappingOutline {
  file: string;
  problems: FileProblems;
  json: Record<string, unknown>;
  name: string;
  description: string;
  /** Declared columns, by normalised name, in declaration order. */
  columns: Map<string, ColumnDeclaration>;
  /** Normalised key columns; empty: the whole row. */
  key: string[];
  dependsOn: string[];
  /** File-name patterns; empty: any file whose header fits. */
  fileNames: string[];
  resources: ResourceOutline[];
}

export interface ResourceOutline {
  name: string;
  type: string;
  identifier: { system: Template; value: Template };
  mode: WriteMode;
  json: Record<string, unknown>;
  at: string;
}

export const MAPPING_MEMBERS = ['$schema', 'name', 'description', 'fileNames', 'columns', 'key', 'dependsOn', 'defaults', 'codes', 'skip', 'resources'];
const RESOURCE_MEMBERS = ['name', 'type', 'identifier', 'write', 'when', 'elements'];
const NAME = /^[a-z][a-z0-9_-]*$/;
/** A row's resources land in one transaction; the server caps conditional entries in one at 8. */
export const MAX_RESOURCES_PER_ROW = 8;

/** Reads a mapping's outline; problems are added and undefined returned when it is unusable. */
export function outlineMapping(file: string, json: unknown, problems: FileProblems): MappingOutline | undefined {
  if (!isPlainObject(json)) {
    problems.add('', 'a mapping is a JSON object (see docs/mappings.md)');
    return undefined;
  }
  const membersOk = onlyMembers(json, MAPPING_MEMBERS, '', problems);
  const name = typeof json.name === 'string' ? json.name : '';
  if (!NAME.test(name)) {
    problems.add('/name', '"name" is required: lower-case letters, digits, "_" and "-", starting with a letter');
  }
  if (json.description !== undefined && typeof json.description !== 'string') {
    problems.add('/description', '"description" is a text');
  }
  const columns = readColumns(json.columns, problems);
  const known = (column: string): boolean => columns.has(column);
  const key = readKey(json.key, known, problems);
  const dependsOn = json.dependsOn === undefined ? [] : isStringList(json.dependsOn) ? json.dependsOn : undefined;
  if (!dependsOn) {
    problems.add('/dependsOn', '"dependsOn" is a list of table names');
  }
  const fileNames = json.fileNames === undefined ? [] : isStringList(json.fileNames) && json.fileNames.every((f) => f.trim()) ? json.fileNames : undefined;
  if (!fileNames) {
    problems.add('/fileNames', '"fileNames" is a list of file-name patterns such as "conditions*.csv" (* any text, ? one character)');
  }
  const resources = readResources(json.resources, known, problems);
  if (!membersOk || !NAME.test(name) || !key || !dependsOn || !fileNames || !resources) {
    return undefined;
  }
  const description = (json.description as string | undefined) ?? '';
  return { file, problems, json, name, description, columns, key, dependsOn, fileNames, resources };
}

function readColumns(value: unknown, problems: FileProblems): Map<string, ColumnDeclaration> {
  const columns = new Map<string, ColumnDeclaration>();
  if (!isPlainObject(value) || Object.keys(value).length === 0) {
    problems.add('/columns', '"columns" lists the columns the mapping reads: { "patient_id": { "required": true }, ... }');
    return columns;
  }
  for (const [raw, declaration] of Object.entries(value)) {
    const at = pointer('/columns', raw);
    const name = normalizeColumnName(raw);
    if (!name) {
      problems.add(at, 'a column name must not be empty');
      continue;
    }
    if (columns.has(name)) {
      problems.add(at, `column '${name}' is declared twice (case, spaces and hyphens do not matter)`);
      continue;
    }
    if (!isPlainObject(declaration) || !onlyMembers(declaration, ['required', 'description'], at, problems)) {
      problems.add(at, 'a column is declared as { "required": true|false, "description": "..." }');
      continue;
    }
    if (declaration.required !== undefined && typeof declaration.required !== 'boolean') {
      problems.add(pointer(at, 'required'), '"required" is true or false');
    }
    columns.set(name, declaration as ColumnDeclaration);
  }
  return columns;
}

function readKey(value: unknown, known: (column: string) => boolean, problems: FileProblems): string[] | undefined {
  if (value === undefined) {
    return [];
  }
  if (!isStringList(value)) {
    problems.add('/key', '"key" is a list of column names (empty or absent: the whole row)');
    return undefined;
  }
  const key = value.map(normalizeColumnName);
  const unknown = key.filter((c) => !known(c));
  if (unknown.length) {
    problems.add('/key', `key column(s) ${unknown.join(', ')} not declared in "columns"`);
    return undefined;
  }
  if (new Set(key).size !== key.length) {
    problems.add('/key', 'a key column is listed twice');
    return undefined;
  }
  return key;
}

function readResources(value: unknown, known: (column: string) => boolean, problems: FileProblems): ResourceOutline[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    problems.add('/resources', '"resources" lists what each row writes: at least one resource');
    return undefined;
  }
  if (value.length > MAX_RESOURCES_PER_ROW) {
    problems.add('/resources', `at most ${MAX_RESOURCES_PER_ROW} resources per row (they are written in one transaction)`);
    return undefined;
  }
  const names = new Set<string>();
  const resources: ResourceOutline[] = [];
  let ok = true;
  value.forEach((json: unknown, i) => {
    const at = pointer('/resources', i);
    if (!isPlainObject(json) || !onlyMembers(json, RESOURCE_MEMBERS, at, problems)) {
      ok = false;
      return;
    }
    const type = typeof json.type === 'string' ? json.type : '';
    if (!isResourceTypeName(type)) {
      problems.add(pointer(at, 'type'), `"type" must be an R4 resource type (Patient, Observation, ...)${type ? `: '${type}' is not one` : ''}`);
      ok = false;
      return;
    }
    const name = json.name === undefined ? type.toLowerCase() : typeof json.name === 'string' ? json.name : '';
    if (!NAME.test(name)) {
      problems.add(pointer(at, 'name'), '"name": lower-case letters, digits, "_" and "-", starting with a letter');
      ok = false;
    } else if (names.has(name)) {
      problems.add(pointer(at, 'name'), `two resources are named '${name}': give them different "name"s`);
      ok = false;
    }
    names.add(name);
    const mode = json.write === undefined ? 'merge' : json.write;
    if (mode !== 'merge' && mode !== 'replace') {
      problems.add(pointer(at, 'write'), '"write" is "merge" (keep what the mapping does not write) or "replace"');
      ok = false;
    }
    const identifier = readIdentifier(json.identifier, pointer(at, 'identifier'), known, problems);
    if (!identifier) {
      ok = false;
      return;
    }
    resources.push({ name, type, identifier, mode: mode as WriteMode, json, at });
  });
  return ok ? resources : undefined;
}

/** `{ system, value }` templates; the system must be an absolute URI once `{$base}` is put in. */
export function readIdentifier(
  value: unknown,
  at: string,
  known: (column: string) => boolean,
  problems: FileProblems
): { system: Template; value: Template } | undefined {
  if (!isPlainObject(value) || !onlyMembers(value, ['system', 'value'], at, problems) || typeof value.system !== 'string' || typeof value.value !== 'string') {
    problems.add(at, '"identifier" is { "system": "<uri template>", "value": "<template>" }');
    return undefined;
  }
  const system = compileTemplate(value.system, known);
  const id = compileTemplate(value.value, known);
  if ('error' in system) {
    problems.add(pointer(at, 'system'), system.error);
  } else if (!system.usesBase && !/^[a-z][a-z0-9+.-]*:\S+$/i.test(system.text)) {
    problems.add(pointer(at, 'system'), 'the identifier system must be an absolute URI (e.g. "{$base}/patient-id" or "https://...")');
    return undefined;
  }
  if ('error' in id) {
    problems.add(pointer(at, 'value'), id.error);
  } else if (id.constant) {
    problems.add(pointer(at, 'value'), 'the identifier value must come from the row ({column} or {$key}): a constant would give every row the same resource');
    return undefined;
  }
  return 'error' in system || 'error' in id ? undefined : { system, value: id };
}
