import type { MedplumClient } from '@medplum/core';
import type { Resource } from '@medplum/fhirtypes';
import { keyValue } from '../engine/row-key';
import { identifierQuery } from '../fhir/search-values';
import type { ImportSettings } from '../settings';
import { normalizeColumnName } from '../tables/columns';
import { refusedCharacters } from '../tables/identifier-chars';
import type { RowReader } from '../tables/row-reader';
import type { MappingContext, ResourceWrite, RowTable, WriteUnit } from '../tables/types';
import type { BodyStep } from './body';
import { compact, setAt } from './body';
import type { CodeMap, CodeMapSource, StoredCodeMap } from './codes';
import { compileCodeMap, loadStoredCodeMap } from './codes';
import type { RowTest } from './conditions';
import { compileCondition } from './conditions';
import type { Produce, RowContext, ValueCompileContext, ValueOptions } from './element-values';
import { compileFixedValue, compileTextValue } from './element-values';
import type { ElementInfo } from './fhir-elements';
import { resolveElementPath } from './fhir-elements';
import type { ReferenceDeclaration, WriteMode } from './format';
import type { MappingOutline, ResourceOutline } from './outline';
import type { FileProblems } from './problems';
import { pointer } from './problems';
import { isPlainObject, isStringList, onlyMembers } from './shape';
import type { Template, TemplateCells } from './templates';
import { compileTemplate } from './templates';
import { compileDateFormats, isTimeZone } from '../values/date-time';

/** What a mapping table looks up per file: its code maps, stored ones read from Medplum. */
export interface MappingLookups {
  codeMaps: ReadonlyMap<string, CodeMap>;
}

/** A compiled mapping: a table the engine imports with, and what it writes. */
export interface CompiledMapping {
  file: string;
  table: RowTable<MappingLookups>;
  /** Resource types it writes (the bot's access policy needs them). */
  writes: string[];
}

const VALUE_MEMBERS = [
  'column',
  'template',
  'fixed',
  'reference',
  'when',
  'required',
  'map',
  'formats',
  'timeZone',
  'notAfter',
  'maxLength',
  'trueValues',
  'falseValues',
  'unit',
  'unitSystem',
  'unitCode',
];
const SOURCES = ['column', 'template', 'fixed', 'reference'] as const;
const MAX_IDENTIFIER_LENGTH = 256;

interface CompiledElement {
  path: string;
  steps: BodyStep[];
  produce: Produce;
}

interface CompiledResource {
  outline: ResourceOutline;
  when?: RowTest;
  elements: CompiledElement[];
  /** Some element path has an index above 0: rows may leave holes to close. */
  hasHoles: boolean;
}

/** Compiles a mapping whose outline was read; `outlines`: every mapping of the set, by name. */
export function compileMapping(
  outline: MappingOutline,
  outlines: ReadonlyMap<string, MappingOutline>,
  files: ReadonlyMap<string, string>
): CompiledMapping | undefined {
  const { problems, json } = outline;
  const known = (column: string): boolean => outline.columns.has(column);
  const used = new Set<string>(outline.key);
  const problemsBefore = problems.count();

  // Broken defaults are reported once, at /defaults; elements are then checked with the built-in ones.
  const defaults = readDefaults(json.defaults, problems) ?? { ...BUILT_IN_DEFAULTS };
  const defaultsOk = problems.count() === problemsBefore;
  const codeSources = readCodeMaps(json.codes, problems, files);
  const compileCodes: ReadonlyMap<string, CodeMap | 'stored'> = new Map(
    [...codeSources].map(([name, source]) => [name, 'ready' in source ? source.ready : 'stored'])
  );
  const ctx: ValueCompileContext = { problems, codeMaps: compileCodes, defaults };
  const skips = readSkips(json.skip, problems, known, used);
  const references = new Map<string, string>();
  const resources: CompiledResource[] = [];
  for (const resource of outline.resources) {
    const compiled = compileResource(resource, { outline, outlines, ctx, used, references });
    if (compiled) {
      resources.push(compiled);
    }
  }
  for (const resource of outline.resources) {
    resource.identifier.value.columns.forEach((c) => used.add(c));
    resource.identifier.system.columns.forEach((c) => used.add(c));
  }
  // A required column that is not read still tells this table's files from others'.
  const unused = [...outline.columns].filter(([c, d]) => !used.has(c) && d.required !== true).map(([c]) => c);
  if (unused.length) {
    problems.add('/columns', `column(s) ${unused.join(', ')} are declared but not used: use them, mark them required (to recognise the file), or leave them out`);
  }
  if (resources.length !== outline.resources.length || !skips || !defaultsOk || unused.length) {
    return undefined;
  }
  const stored = [...codeSources.values()].flatMap((s) => ('stored' in s ? [s.stored] : []));
  const ready = new Map([...codeSources].flatMap(([name, s]) => ('ready' in s ? [[name, s.ready] as const] : [])));
  const dependsOn = [...new Set([...outline.dependsOn, ...references.values()])];
  return {
    file: outline.file,
    writes: [...new Set(outline.resources.map((r) => r.type))],
    table: mappingTable(outline, resources, skips, ready, stored, dependsOn, referenceColumns(outline, outlines)),
  };
}

const BUILT_IN_DEFAULTS: ValueCompileContext['defaults'] = { timeZone: 'UTC', dateFormats: ['YYYY-MM-DD'], dateTimeFormats: ['ISO'] };

function readDefaults(value: unknown, problems: FileProblems): ValueCompileContext['defaults'] | undefined {
  const defaults = { ...BUILT_IN_DEFAULTS };
  if (value === undefined) {
    return defaults;
  }
  if (!isPlainObject(value) || !onlyMembers(value, ['timeZone', 'dateFormats', 'dateTimeFormats'], '/defaults', problems)) {
    return undefined;
  }
  if (value.timeZone !== undefined) {
    if (typeof value.timeZone !== 'string') {
      problems.add('/defaults/timeZone', '"timeZone" is an IANA time zone name');
      return undefined;
    }
    defaults.timeZone = value.timeZone;
  }
  if (!isTimeZone(defaults.timeZone)) {
    problems.add('/defaults/timeZone', `unknown time zone '${defaults.timeZone}' (an IANA name such as Europe/Berlin or UTC)`);
    return undefined;
  }
  for (const member of ['dateFormats', 'dateTimeFormats'] as const) {
    if (value[member] !== undefined) {
      if (!isStringList(value[member]) || value[member].length === 0) {
        problems.add(pointer('/defaults', member), `"${member}" is a non-empty list of formats`);
        return undefined;
      }
      const compiled = compileDateFormats(member === 'dateFormats' ? 'date' : 'dateTime', value[member]);
      if ('error' in compiled) {
        problems.add(pointer('/defaults', member), compiled.error);
        return undefined;
      }
      defaults[member] = value[member];
    }
  }
  return defaults;
}

function readCodeMaps(value: unknown, problems: FileProblems, files: ReadonlyMap<string, string>): Map<string, CodeMapSource> {
  const maps = new Map<string, CodeMapSource>();
  if (value === undefined) {
    return maps;
  }
  if (!isPlainObject(value)) {
    problems.add('/codes', '"codes" is an object: code map name -> code map');
    return maps;
  }
  for (const [name, declaration] of Object.entries(value)) {
    const compiled = compileCodeMap(name, declaration, pointer('/codes', name), problems, files);
    if (compiled) {
      maps.set(name, compiled);
    }
  }
  return maps;
}

interface SkipRule {
  test: RowTest;
  reason: string;
}

function readSkips(value: unknown, problems: FileProblems, known: (c: string) => boolean, used: Set<string>): SkipRule[] | undefined {
  if (value === undefined) {
    return [];
  }
  if (!Array.isArray(value)) {
    problems.add('/skip', '"skip" is a list of { "if": <condition>, "reason": "..." }');
    return undefined;
  }
  const rules: SkipRule[] = [];
  let ok = true;
  value.forEach((rule: unknown, i) => {
    const at = pointer('/skip', i);
    if (!isPlainObject(rule) || !onlyMembers(rule, ['if', 'reason'], at, problems) || typeof rule.reason !== 'string' || !rule.reason.trim()) {
      problems.add(at, 'a skip rule is { "if": <condition>, "reason": "<why, for the report>" }');
      ok = false;
      return;
    }
    const test = compileCondition(rule.if, pointer(at, 'if'), problems, known, used);
    if (test) {
      rules.push({ test, reason: rule.reason.trim() });
    } else {
      ok = false;
    }
  });
  return ok ? rules : undefined;
}

/** What compiling one mapping's values shares: the mapping, the set, and what it records on the way. */
interface MappingScope {
  outline: MappingOutline;
  /** Every mapping of the set, by name (references by key). */
  outlines: ReadonlyMap<string, MappingOutline>;
  ctx: ValueCompileContext;
  /** Columns something reads. */
  used: Set<string>;
  /** Mappings referenced by key: the import order depends on them. */
  references: Map<string, string>;
}

function compileResource(resource: ResourceOutline, scope: MappingScope): CompiledResource | undefined {
  const { outline, ctx, used } = scope;
  const { problems } = ctx;
  const known = (column: string): boolean => outline.columns.has(column);
  const when = resource.json.when === undefined ? undefined : compileCondition(resource.json.when, pointer(resource.at, 'when'), problems, known, used);
  if (resource.json.when !== undefined && !when) {
    return undefined;
  }
  const elementsJson = resource.json.elements;
  if (!isPlainObject(elementsJson) || Object.keys(elementsJson).length === 0) {
    problems.add(pointer(resource.at, 'elements'), '"elements" maps element paths to values: { "birthDate": { "column": "birth_date" }, ... }');
    return undefined;
  }
  const elements: CompiledElement[] = [];
  let ok = true;
  let hasHoles = false;
  const paths = new Set<string>();
  for (const [path, declaration] of Object.entries(elementsJson)) {
    const at = pointer(resource.at, 'elements', path);
    const info = resolveElementPath(resource.type, path);
    if ('error' in info) {
      problems.add(at, info.error);
      ok = false;
      continue;
    }
    // category.coding[0] and category[0].coding[0] are the same element.
    const last = info.steps.length - 1;
    const same = info.steps
      .map((step, i) => (step.isArray && (step.index !== undefined || i < last) ? `${step.name}[${step.index ?? 0}]` : step.name))
      .join('.');
    if (paths.has(same)) {
      problems.add(at, `${info.path} is written twice${same === info.path ? '' : ` (as ${same})`}`);
      ok = false;
      continue;
    }
    paths.add(same);
    const produce = compileValue(info, declaration, at, resource, scope);
    if (!produce) {
      ok = false;
      continue;
    }
    hasHoles ||= info.steps.some((s) => (s.index ?? 0) > 0);
    elements.push({ path: info.path, steps: info.steps.map((s) => ({ name: s.name, index: s.index, isArray: s.isArray })), produce });
  }
  return ok ? { outline: resource, when, elements, hasHoles } : undefined;
}

function compileValue(info: ElementInfo, declaration: unknown, at: string, resource: ResourceOutline, scope: MappingScope): Produce | undefined {
  const { outline, ctx, used } = scope;
  const { problems } = ctx;
  const known = (column: string): boolean => outline.columns.has(column);
  const declared = typeof declaration === 'string' ? { template: declaration } : declaration;
  if (!isPlainObject(declared) || !onlyMembers(declared, VALUE_MEMBERS, at, problems)) {
    if (!isPlainObject(declared)) {
      problems.add(at, 'a value is a template text or an object with one of column, template, fixed, reference');
    }
    return undefined;
  }
  const sources = SOURCES.filter((s) => s in declared);
  if (sources.length !== 1) {
    problems.add(at, `a value has exactly one of ${SOURCES.join(', ')}`);
    return undefined;
  }
  const when = declared.when === undefined ? undefined : compileCondition(declared.when, pointer(at, 'when'), problems, known, used);
  if (declared.when !== undefined && !when) {
    return undefined;
  }
  const source = sources[0];
  if (source === 'fixed') {
    const extra = Object.keys(declared).filter((k) => k !== 'fixed' && k !== 'when');
    if (extra.length) {
      problems.add(at, `a fixed value takes no options (${extra.join(', ')})`);
      return undefined;
    }
    return compileFixedValue(info, declared.fixed, when, at, ctx);
  }
  if (source === 'reference') {
    return compileReference(info, declared, when, at, resource, scope);
  }
  const template =
    source === 'column'
      ? typeof declared.column === 'string'
        ? compileTemplate(`{${declared.column.replace(/[{}]/g, '')}}`, known)
        : { error: '"column" takes a column name' }
      : typeof declared.template === 'string'
        ? compileTemplate(declared.template, known)
        : { error: '"template" takes a text with {column}s' };
  if ('error' in template) {
    problems.add(pointer(at, source), template.error);
    return undefined;
  }
  if (template.constant) {
    problems.add(pointer(at, source), 'a template without {column}s is a constant: write it as "fixed"');
    return undefined;
  }
  if (info.steps.length > 1 && info.steps[info.steps.length - 2].type === 'Reference' && info.steps[info.steps.length - 1].name === 'reference') {
    problems.add(at, `write the Reference itself (${info.steps.slice(0, -1).map((s) => s.name).join('.')}) with a "reference" value: a text reference would skip the checks (and the server resolves none)`);
    return undefined;
  }
  template.columns.forEach((c) => used.add(c));
  const options = readOptions(declared, at, problems, known, used);
  if (!options) {
    return undefined;
  }
  const what = template.columns.length === 1 && source === 'column' ? template.columns[0] : `${info.path} (${template.columns.join(', ')})`;
  return compileTextValue(info, { template, what }, options, when, at, ctx);
}

function readOptions(
  declared: Record<string, unknown>,
  at: string,
  problems: FileProblems,
  known: (c: string) => boolean,
  used: Set<string>
): ValueOptions | undefined {
  let ok = true;
  const bad = (member: string, rule: string): void => {
    problems.add(pointer(at, member), rule);
    ok = false;
  };
  const options: ValueOptions = {};
  const { required, map, formats, timeZone, notAfter, maxLength, trueValues, falseValues, unit, unitSystem, unitCode } = declared;
  if (required !== undefined) {
    if (typeof required === 'boolean') options.required = required;
    else bad('required', '"required" is true or false');
  }
  if (map !== undefined) {
    if (typeof map === 'string') options.map = map;
    else bad('map', '"map" names a code map of "codes"');
  }
  if (formats !== undefined) {
    if (isStringList(formats) && formats.length) options.formats = formats;
    else bad('formats', '"formats" is a non-empty list of formats');
  }
  if (timeZone !== undefined) {
    if (typeof timeZone === 'string') options.timeZone = timeZone;
    else bad('timeZone', '"timeZone" is an IANA time zone name');
  }
  if (notAfter !== undefined) {
    if (notAfter === 'today') options.notAfter = 'today';
    else bad('notAfter', '"notAfter" takes "today"');
  }
  if (maxLength !== undefined) {
    if (typeof maxLength === 'number' && Number.isInteger(maxLength) && maxLength > 0) options.maxLength = maxLength;
    else bad('maxLength', '"maxLength" is a whole number above 0');
  }
  for (const [member, list] of [['trueValues', trueValues], ['falseValues', falseValues]] as const) {
    if (list !== undefined) {
      if (isStringList(list) && list.length) options[member] = list.map((v) => v.trim().toLowerCase());
      else bad(member, `"${member}" is a non-empty list of texts`);
    }
  }
  for (const [member, text] of [['unit', unit], ['unitCode', unitCode]] as const) {
    if (text !== undefined) {
      const template = typeof text === 'string' ? compileTemplate(text, known) : { error: `"${member}" is a text or {column} template` };
      if ('error' in template) bad(member, template.error);
      else {
        options[member] = template;
        template.columns.forEach((c) => used.add(c));
      }
    }
  }
  if (unitSystem !== undefined) {
    if (typeof unitSystem === 'string' && /^[a-z][a-z0-9+.-]*:\S+$/i.test(unitSystem)) options.unitSystem = unitSystem;
    else bad('unitSystem', '"unitSystem" is an absolute URI');
  }
  return ok ? options : undefined;
}

function compileReference(
  info: ElementInfo,
  declared: Record<string, unknown>,
  when: RowTest | undefined,
  at: string,
  resource: ResourceOutline,
  scope: MappingScope
): Produce | undefined {
  const { outline, outlines, ctx, used, references } = scope;
  const { problems } = ctx;
  const refAt = pointer(at, 'reference');
  const extra = Object.keys(declared).filter((k) => !['reference', 'when', 'required'].includes(k));
  if (extra.length) {
    problems.add(at, `a reference takes only "when" and "required" besides it (not ${extra.join(', ')})`);
    return undefined;
  }
  if (info.type !== 'Reference') {
    problems.add(refAt, `${info.path} is a ${info.type}, not a Reference`);
    return undefined;
  }
  const ref = declared.reference;
  if (!isPlainObject(ref) || !onlyMembers(ref, ['mapping', 'key', 'resource', 'type', 'identifier'], refAt, problems)) {
    problems.add(refAt, 'a reference is { "mapping", "key" }, { "resource" } (this row) or { "type", "identifier" }');
    return undefined;
  }
  const decl = ref as ReferenceDeclaration;
  const required = declared.required === true;
  const allows = (type: string): boolean =>
    !info.targetTypes || info.targetTypes.includes(type) || info.targetTypes.includes('Resource') || info.targetTypes.length === 0;
  const wrongTarget = (type: string): undefined => {
    problems.add(refAt, `${info.path} cannot refer to a ${type} (it refers to ${info.targetTypes?.join(', ')})`);
    return undefined;
  };

  if (decl.mapping === undefined && decl.type === undefined) {
    // A resource of this same row.
    const target = outline.resources.find((r) => r.name === decl.resource);
    if (typeof decl.resource !== 'string' || !target || decl.key !== undefined || decl.identifier !== undefined) {
      problems.add(refAt, `"resource" alone names another resource of this mapping (${outline.resources.map((r) => r.name).join(', ')})`);
      return undefined;
    }
    if (target === resource) {
      problems.add(refAt, 'a resource cannot refer to itself');
      return undefined;
    }
    if (!allows(target.type)) {
      return wrongTarget(target.type);
    }
    const name = target.name;
    return (row) => {
      if (when && !when(row.cells.cell)) {
        return undefined;
      }
      const fullUrl = row.fullUrls.get(name);
      if (!fullUrl && required) {
        row.reader.problem(undefined, `${info.path} refers to the row's ${name}, which this row does not write`);
      }
      return fullUrl ? { reference: fullUrl } : undefined;
    };
  }

  let type: string;
  let identifier: { system: Template; value: Template };
  let cellsFor: (row: RowContext) => TemplateCells;
  let columns: string[];
  if (decl.mapping !== undefined) {
    const target = typeof decl.mapping === 'string' ? outlines.get(decl.mapping) : undefined;
    if (!target) {
      problems.add(pointer(refAt, 'mapping'), `no mapping named '${String(decl.mapping)}' in the set (${[...outlines.keys()].join(', ')})`);
      return undefined;
    }
    const targetResource = decl.resource === undefined ? target.resources[0] : target.resources.find((r) => r.name === decl.resource);
    if (!targetResource) {
      problems.add(pointer(refAt, 'resource'), `mapping '${target.name}' has no resource named '${String(decl.resource)}'`);
      return undefined;
    }
    if (target.key.length === 0) {
      problems.add(pointer(refAt, 'mapping'), `mapping '${target.name}' has no key (its rows are identified by their whole content), so nothing can refer to its rows`);
      return undefined;
    }
    if (!isStringList(decl.key) || decl.key.length !== target.key.length) {
      problems.add(pointer(refAt, 'key'), `"key" lists this row's columns holding '${target.name}'s key (${target.key.join(', ')}), in that order`);
      return undefined;
    }
    columns = decl.key.map(normalizeColumnName);
    const undeclared = columns.filter((c) => !outline.columns.has(c));
    if (undeclared.length) {
      problems.add(pointer(refAt, 'key'), `column(s) ${undeclared.join(', ')} not declared in "columns"`);
      return undefined;
    }
    const foreign = [...targetResource.identifier.system.columns, ...targetResource.identifier.value.columns].filter((c) => !target.key.includes(c));
    if (foreign.length) {
      problems.add(pointer(refAt, 'mapping'), `'${target.name}'s identifier uses column(s) ${foreign.join(', ')} outside its key, so a reference by key cannot rebuild it`);
      return undefined;
    }
    type = targetResource.type;
    identifier = targetResource.identifier;
    references.set(target.name, target.name);
    const ours = new Map(target.key.map((c, i) => [c, columns[i]]));
    const single = target.key.length === 1;
    cellsFor = (row) => ({
      cell: (c) => row.cells.cell(ours.get(c) ?? ''),
      key: () => keyValue(columns.map((c) => row.cells.cell(c)), single),
      base: row.cells.base,
    });
  } else {
    if (typeof decl.type !== 'string' || decl.key !== undefined || decl.resource !== undefined) {
      problems.add(refAt, '{ "type", "identifier" } refers to any resource by its identifier');
      return undefined;
    }
    type = decl.type;
    const known = (column: string): boolean => outline.columns.has(column);
    const read = readIdentifierTemplates(decl.identifier, pointer(refAt, 'identifier'), known, problems);
    if (!read) {
      return undefined;
    }
    identifier = read;
    columns = [...identifier.value.columns];
    cellsFor = (row) => row.cells;
  }
  if (!allows(type)) {
    return wrongTarget(type);
  }
  columns.forEach((c) => used.add(c));
  const what = columns.join(', ');
  return (row) => {
    if (when && !when(row.cells.cell)) {
      return undefined;
    }
    const cells = cellsFor(row);
    const value = identifier.value.render(cells);
    if (!value) {
      if (required) {
        row.reader.problem(columns[0], `${what} is required`);
      }
      return undefined;
    }
    const refused = refusedCharacters(value);
    if (refused || value.length > MAX_IDENTIFIER_LENGTH) {
      row.reader.problem(columns[0], `${what} ${refused ? `must not contain ${refused}` : `is longer than ${MAX_IDENTIFIER_LENGTH} characters`} (it names a ${type})`);
      return undefined;
    }
    return { reference: identifierQuery(type, identifier.system.render(cells), value) };
  };
}

function readIdentifierTemplates(
  value: unknown,
  at: string,
  known: (column: string) => boolean,
  problems: FileProblems
): { system: Template; value: Template } | undefined {
  if (!isPlainObject(value) || typeof value.system !== 'string' || typeof value.value !== 'string' || !onlyMembers(value, ['system', 'value'], at, problems)) {
    problems.add(at, '"identifier" is { "system": "<uri>", "value": "<template>" }');
    return undefined;
  }
  const system = compileTemplate(value.system, known);
  const id = compileTemplate(value.value, known);
  if ('error' in system || 'error' in id) {
    problems.add(at, 'error' in system ? system.error : (id as { error: string }).error);
    return undefined;
  }
  return { system, value: id };
}

/** Resource type -> the column naming it, for messages about references the server cannot resolve. */
function referenceColumns(outline: MappingOutline, outlines: ReadonlyMap<string, MappingOutline>): Record<string, string> {
  const columns: Record<string, string> = {};
  for (const resource of outline.resources) {
    const elements = resource.json.elements as Record<string, unknown>;
    for (const declaration of Object.values(elements)) {
      const ref = isPlainObject(declaration) && isPlainObject(declaration.reference) ? (declaration.reference as ReferenceDeclaration) : undefined;
      if (ref?.mapping && isStringList(ref.key) && ref.key.length) {
        const target = outlines.get(ref.mapping);
        const type = (ref.resource ? target?.resources.find((r) => r.name === ref.resource) : target?.resources[0])?.type;
        if (type && !columns[type]) {
          columns[type] = normalizeColumnName(ref.key[0]);
        }
      }
    }
  }
  return columns;
}

/** The engine's view of a compiled mapping. */
function mappingTable(
  outline: MappingOutline,
  resources: readonly CompiledResource[],
  skips: readonly SkipRule[],
  readyMaps: ReadonlyMap<string, CodeMap>,
  stored: readonly StoredCodeMap[],
  dependsOn: string[],
  references: Record<string, string>
): RowTable<MappingLookups> {
  return {
    kind: 'rows',
    name: outline.name,
    description: outline.description,
    columns: [...outline.columns].map(([name, c]) => ({ name, required: c.required === true, description: c.description ?? '' })),
    key: outline.key,
    fileNames: outline.fileNames,
    dependsOn,
    references,
    writeModes: Object.fromEntries(resources.map((r) => [r.outline.type, r.outline.mode])) as Record<string, WriteMode>,
    prepare: stored.length
      ? async (medplum: MedplumClient, settings: ImportSettings, file: string) => {
          const codeMaps = new Map(readyMaps);
          for (const map of stored) {
            codeMaps.set(map.name, await loadStoredCodeMap(medplum, map, settings.identifierBase, file, outline.dependsOn));
          }
          return { codeMaps };
        }
      : undefined,
    mapRow(reader: RowReader, context: MappingContext<MappingLookups>): WriteUnit {
      const cell = (column: string): string => reader.raw(column);
      for (const skip of skips) {
        if (skip.test(cell)) {
          return { kind: 'skip', reason: skip.reason };
        }
      }
      const active = resources.filter((r) => !r.when || r.when(cell));
      if (active.length === 0) {
        return { kind: 'skip', reason: 'nothing to write: no resource applies to this row' };
      }
      // Resources written together are linked by urn:uuid names; a lone one is a plain batch entry.
      const several = active.length > 1;
      const fullUrls = new Map<string, string>();
      if (several) {
        for (const r of active) {
          fullUrls.set(r.outline.name, `urn:uuid:${context.newUuid()}`);
        }
      }
      const cells: TemplateCells = { cell, key: () => reader.key, base: context.settings.identifierBase };
      const row: RowContext = {
        reader,
        cells,
        codeMaps: context.lookups?.codeMaps ?? readyMaps,
        now: context.now,
        settings: context.settings,
        fullUrls,
      };
      const writes = active.map((r) => buildWrite(r, row));
      return several ? { kind: 'transaction', writes } : { kind: 'single', write: writes[0] };
    },
  };
}

function buildWrite(resource: CompiledResource, row: RowContext): ResourceWrite {
  const { outline } = resource;
  const system = outline.identifier.system.render(row.cells);
  const value = identifierValue(outline, row);
  const body: Record<string, unknown> = { resourceType: outline.type, identifier: [{ system, value }] };
  for (const element of resource.elements) {
    const produced = element.produce(row);
    if (produced !== undefined) {
      setAt(body, element.steps, produced);
    }
  }
  if (resource.hasHoles) {
    compact(body);
  }
  return {
    resource: body as unknown as Resource,
    match: { system, value },
    label: outline.name,
    fullUrl: row.fullUrls.get(outline.name),
    mode: outline.mode,
    paths: resource.elements.map((e) => e.steps),
  };
}

/** The identifier value; a missing or unusable one is a row problem naming its column(s). */
function identifierValue(outline: ResourceOutline, row: RowContext): string {
  const template = outline.identifier.value;
  const value = template.render(row.cells);
  const columns = template.columns;
  const what = columns.length ? columns.join(', ') : 'the row key';
  if (!value) {
    const empty = columns.filter((c) => !row.cells.cell(c));
    const named = empty.length ? empty : columns;
    row.reader.problem(
      named[0],
      named.length > 1 ? `${named.join(', ')} are required (they make the ${outline.name} identifier)` : `${named[0] ?? what} is required`
    );
  } else if (value.length > MAX_IDENTIFIER_LENGTH) {
    row.reader.problem(columns[0], `${what} is longer than ${MAX_IDENTIFIER_LENGTH} characters`);
  } else {
    const refused = refusedCharacters(value);
    if (refused) {
      row.reader.problem(columns[0], `${what} must not contain ${refused} (it becomes a FHIR identifier)`);
    }
  }
  return value;
}
