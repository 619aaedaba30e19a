import type { MedplumClient } from '@medplum/core';
import type { CodeSystemConcept } from '@medplum/fhirtypes';
import Papa from 'papaparse';
import { DependencyNotReadyError } from '../errors';
import { normalizeColumnName } from '../tables/columns';
import type { CodeMapDeclaration } from './format';
import type { FileProblems } from './problems';
import { pointer } from './problems';
import { isPlainObject, onlyMembers } from './shape';
import type { Template, TemplateCells } from './templates';
import { compileTemplate } from './templates';

export interface Coding {
  system?: string;
  code?: string;
  display?: string;
}

/** What a code map gives for a source code: a code, or a Coding. */
export type MappedCode = string | Coding;

/** Most allowed codes listed in an "unknown code" message. */
export const MAX_LISTED_CODES = 12;

export interface CodeMap {
  readonly name: string;
  /** The value for a source code (case-insensitive); null when the default says "leave it out"; undefined when unknown. */
  lookup(text: string): MappedCode | null | undefined;
  /** The source codes, when there are few enough to list in a message. */
  readonly listable?: readonly string[];
  /** Every value the map can give (checked against the elements that use it). */
  readonly values: readonly MappedCode[];
}

/** A code map read from Medplum when a file is imported (CodeSystem or ConceptMap by url). */
export interface StoredCodeMap {
  readonly name: string;
  readonly kind: 'codeSystem' | 'conceptMap';
  readonly url: Template;
  readonly fallback?: MappedCode | null;
}

export type CodeMapSource = { ready: CodeMap } | { stored: StoredCodeMap };

const SOURCES = ['values', 'file', 'codeSystem', 'conceptMap'] as const;
const CODING_MEMBERS = ['system', 'code', 'display'];

/** A URI with a scheme (`http:`, `urn:`): code systems must be absolute. */
const ABSOLUTE_URI = /^[a-z][a-z0-9+.-]*:\S+$/i;

/**
 * Compiles one entry of a mapping's `codes`. `files`: the dictionary CSVs shipped with the
 * mapping set, by file name.
 */
export function compileCodeMap(
  name: string,
  declaration: unknown,
  at: string,
  problems: FileProblems,
  files: ReadonlyMap<string, string>
): CodeMapSource | undefined {
  if (!isPlainObject(declaration)) {
    problems.add(at, `code map '${name}' must be an object with one of ${SOURCES.join(', ')}`);
    return undefined;
  }
  if (!onlyMembers(declaration, [...SOURCES, 'code', 'value', 'default'], at, problems)) {
    return undefined;
  }
  const decl = declaration as CodeMapDeclaration;
  const sources = SOURCES.filter((s) => s in decl);
  if (sources.length !== 1) {
    problems.add(at, `code map '${name}' needs exactly one of ${SOURCES.join(', ')}`);
    return undefined;
  }
  let fallback: MappedCode | null | undefined;
  if ('default' in decl) {
    fallback = decl.default === null ? null : checkCodeValue(decl.default, pointer(at, 'default'), problems);
    if (fallback === undefined) {
      return undefined;
    }
  }
  const source = sources[0];
  if ((source !== 'file' && ('code' in decl || 'value' in decl))) {
    problems.add(at, '"code" and "value" belong to a code map read from a dictionary "file"');
    return undefined;
  }
  switch (source) {
    case 'values':
      return inlineMap(name, decl.values, pointer(at, 'values'), problems, fallback);
    case 'file':
      return dictionaryMap(name, decl, at, problems, files, fallback);
    case 'codeSystem':
    case 'conceptMap': {
      const url = decl[source];
      const template =
        typeof url === 'string' ? compileTemplate(url, () => false) : { error: `"${source}" takes the url of the resource in Medplum` };
      if ('error' in template) {
        problems.add(pointer(at, source), template.error);
        return undefined;
      }
      return { stored: { name, kind: source, url: template, fallback } };
    }
  }
}

function inlineMap(
  name: string,
  values: unknown,
  at: string,
  problems: FileProblems,
  fallback: MappedCode | null | undefined
): CodeMapSource | undefined {
  if (!isPlainObject(values) || Object.keys(values).length === 0) {
    problems.add(at, '"values" takes an object: source code -> code or Coding');
    return undefined;
  }
  const entries = new Map<string, MappedCode>();
  let ok = true;
  for (const [code, value] of Object.entries(values)) {
    const checked = checkCodeValue(value, pointer(at, code), problems);
    const folded = code.trim().toLowerCase();
    if (!folded) {
      problems.add(pointer(at, code), 'an empty source code never matches (empty cells leave the element out)');
      ok = false;
    } else if (entries.has(folded)) {
      problems.add(pointer(at, code), `source code '${code}' is listed twice (codes are matched regardless of case)`);
      ok = false;
    }
    if (checked === undefined) {
      ok = false;
    } else {
      entries.set(folded, checked);
    }
  }
  return ok ? { ready: mapOf(name, entries, Object.keys(values), fallback) } : undefined;
}

/** A dictionary CSV: `code` names its source-code column, `value` a template (or Coding of templates) over its columns. */
function dictionaryMap(
  name: string,
  decl: CodeMapDeclaration,
  at: string,
  problems: FileProblems,
  files: ReadonlyMap<string, string>,
  fallback: MappedCode | null | undefined
): CodeMapSource | undefined {
  const fileName = decl.file as unknown;
  if (typeof fileName !== 'string' || !files.has(fileName)) {
    problems.add(pointer(at, 'file'), `dictionary file '${String(fileName)}' is not in the mapping set (put it beside the mapping)`);
    return undefined;
  }
  const parsed = Papa.parse<Record<string, string>>(files.get(fileName) ?? '', {
    header: true,
    skipEmptyLines: 'greedy',
    transformHeader: normalizeColumnName,
  });
  const columns = new Set(parsed.meta.fields ?? []);
  if (parsed.errors.length) {
    problems.add(pointer(at, 'file'), `dictionary file '${fileName}' is not a readable CSV (row ${(parsed.errors[0].row ?? 0) + 2}: ${parsed.errors[0].message})`);
    return undefined;
  }
  const codeColumn = typeof decl.code === 'string' ? normalizeColumnName(decl.code) : '';
  if (!columns.has(codeColumn)) {
    problems.add(pointer(at, 'code'), `"code" must name the column of '${fileName}' holding the source codes (it has ${[...columns].join(', ')})`);
    return undefined;
  }
  const known = (column: string): boolean => columns.has(column);
  const value = compileDictionaryValue(decl.value, pointer(at, 'value'), problems, known);
  if (!value) {
    return undefined;
  }
  const entries = new Map<string, MappedCode>();
  const codes: string[] = [];
  for (const [i, record] of parsed.data.entries()) {
    const code = (record[codeColumn] ?? '').trim();
    if (!code) {
      continue;
    }
    const cells: TemplateCells = { cell: (c) => (record[c] ?? '').trim(), key: () => '', base: '' };
    const mapped = value(cells);
    const folded = code.toLowerCase();
    if (entries.has(folded)) {
      problems.add(pointer(at, 'file'), `'${fileName}' row ${i + 2}: source code '${code}' is listed twice`);
      return undefined;
    }
    if (mapped !== undefined) {
      entries.set(folded, mapped);
      codes.push(code);
    }
  }
  return { ready: mapOf(name, entries, codes, fallback) };
}

function compileDictionaryValue(
  value: unknown,
  at: string,
  problems: FileProblems,
  known: (column: string) => boolean
): ((cells: TemplateCells) => MappedCode | undefined) | undefined {
  if (typeof value === 'string') {
    const template = compileTemplate(value.includes('{') ? value : `{${value}}`, known);
    if ('error' in template) {
      problems.add(at, template.error);
      return undefined;
    }
    return (cells) => template.render(cells) || undefined;
  }
  if (!isPlainObject(value) || !onlyMembers(value, CODING_MEMBERS, at, problems)) {
    problems.add(at, '"value" is a column name or a Coding ({ system, code, display }) of texts and {column} templates');
    return undefined;
  }
  // A member naming a dictionary column reads that column; any other text is a template (a constant system URI).
  const asTemplate = (text: string): string => (!text.includes('{') && known(normalizeColumnName(text)) ? `{${text}}` : text);
  const members: [keyof Coding, ReturnType<typeof compileTemplate>][] = Object.entries(value).map(([k, v]) => [
    k as keyof Coding,
    typeof v === 'string' ? compileTemplate(asTemplate(v), known) : { error: `"${k}" takes a text` },
  ]);
  let ok = true;
  for (const [k, template] of members) {
    if ('error' in template) {
      problems.add(pointer(at, k), template.error);
      ok = false;
    } else if (k === 'system' && template.constant && !ABSOLUTE_URI.test(template.text)) {
      problems.add(pointer(at, k), 'a code system must be an absolute URI (http://..., urn:...)');
      ok = false;
    }
  }
  if (!ok) {
    return undefined;
  }
  const compiled = members as [keyof Coding, Template][];
  return (cells) => {
    const coding: Coding = {};
    for (const [k, template] of compiled) {
      const text = template.render(cells);
      if (text) {
        coding[k] = text;
      }
    }
    return coding.code ? coding : undefined;
  };
}

/** A code value written in a mapping: a code, or a Coding with an absolute system. */
export function checkCodeValue(value: unknown, at: string, problems: FileProblems): MappedCode | undefined {
  if (typeof value === 'string') {
    if (!value.trim()) {
      problems.add(at, 'a code must not be empty');
      return undefined;
    }
    return value;
  }
  if (!isPlainObject(value) || !onlyMembers(value, CODING_MEMBERS, at, problems)) {
    problems.add(at, 'a code value is a code (text) or a Coding { system, code, display }');
    return undefined;
  }
  if (Object.values(value).some((v) => typeof v !== 'string' || !v.trim())) {
    problems.add(at, 'Coding members are non-empty texts');
    return undefined;
  }
  const coding = value as Coding;
  if (!coding.code) {
    problems.add(at, 'a Coding needs a "code"');
    return undefined;
  }
  if (coding.system !== undefined && !ABSOLUTE_URI.test(coding.system)) {
    problems.add(pointer(at, 'system'), 'a code system must be an absolute URI (http://..., urn:...)');
    return undefined;
  }
  return coding;
}

function mapOf(
  name: string,
  entries: ReadonlyMap<string, MappedCode>,
  sourceCodes: readonly string[],
  fallback: MappedCode | null | undefined
): CodeMap {
  const values = [...entries.values(), ...(fallback ? [fallback] : [])];
  return {
    name,
    lookup: (text) => entries.get(text.toLowerCase()) ?? fallback,
    listable: sourceCodes.length <= MAX_LISTED_CODES ? sourceCodes : undefined,
    values,
  };
}

/**
 * Reads a stored code map from Medplum. A CodeSystem gives `code -> Coding(url, code, display)`
 * (nested concepts included); a ConceptMap gives each source code's first mapped target.
 * Missing: the file cannot be imported yet (the table that stores it comes first).
 */
export async function loadStoredCodeMap(
  medplum: MedplumClient,
  stored: StoredCodeMap,
  base: string,
  file: string,
  storedBy: readonly string[]
): Promise<CodeMap> {
  const url = stored.url.render({ cell: () => '', key: () => '', base });
  const entries = new Map<string, MappedCode>();
  const codes: string[] = [];
  const resource = await medplum.searchOne(stored.kind === 'codeSystem' ? 'CodeSystem' : 'ConceptMap', { url }, { cache: 'no-cache' });
  if (!resource) {
    const type = stored.kind === 'codeSystem' ? 'CodeSystem' : 'ConceptMap';
    const first = storedBy.length ? `: import ${storedBy.join(', ')} first` : '';
    throw new DependencyNotReadyError(file, `code map '${stored.name}' reads the ${type} ${url}, which is not in Medplum yet${first}`, storedBy[0] ?? '');
  }
  if (resource.resourceType === 'CodeSystem') {
    const visit = (concepts: CodeSystemConcept[] | undefined): void => {
      for (const concept of concepts ?? []) {
        entries.set(concept.code.toLowerCase(), { system: url, code: concept.code, ...(concept.display ? { display: concept.display } : {}) });
        codes.push(concept.code);
        visit(concept.concept);
      }
    };
    visit(resource.concept);
  } else {
    for (const group of resource.group ?? []) {
      for (const element of group.element ?? []) {
        const target = element.target?.find((t) => t.code && t.equivalence !== 'unmatched' && t.equivalence !== 'disjoint');
        if (element.code && target?.code && !entries.has(element.code.toLowerCase())) {
          codes.push(element.code);
          entries.set(element.code.toLowerCase(), {
            ...(group.target ? { system: group.target } : {}),
            code: target.code,
            ...(target.display ? { display: target.display } : {}),
          });
        }
      }
    }
  }
  return mapOf(stored.name, entries, codes, stored.fallback);
}
