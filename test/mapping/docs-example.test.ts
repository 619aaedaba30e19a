import type { Identifier, Resource } from '@medplum/fhirtypes';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ImportReport, MappingFileSource, MappingSet } from '../../src/lib';
import { csvFromText, defaultSettings, importCsv, inspectCsv, loadMappingSet, MappingSetError } from '../../src/lib';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';

/**
 * The worked example of docs/mappings.md is run as written: its files are the fenced blocks
 * marked `file=<name>` (a `set=<name>` puts a file in another example set), the resources it shows
 * are the blocks marked `resource`, its reports `report=<file>` and `errors=<file>`, and a
 * mapping error `error=<set>`. The files are loaded, imported into the local Medplum, and what
 * lands is compared with what the document shows, field by field.
 */

const DOC_PATH = join(__dirname, '..', '..', 'docs', 'mappings.md');

interface Block {
  lang: string;
  attrs: Record<string, string>;
  text: string;
  line: number;
}

/** Fenced code blocks with their info string's attributes: ```json file=x.json set=y. */
function fencedBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)(.*)$/.exec(lines[i]);
    if (!open) {
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i] !== '```'; i++) {
      body.push(lines[i]);
    }
    const attrs: Record<string, string> = {};
    for (const part of open[2].trim().split(/\s+/).filter(Boolean)) {
      const [key, ...value] = part.split('=');
      attrs[key] = value.join('=');
    }
    blocks.push({ lang: open[1], attrs, text: body.join('\n') + '\n', line: start + 1 });
  }
  return blocks;
}

const doc = readFileSync(DOC_PATH, 'utf8');
const blocks = fencedBlocks(doc);

function setFiles(set: string | undefined): Map<string, string> {
  return new Map(blocks.filter((b) => b.attrs.file && b.attrs.set === set).map((b) => [b.attrs.file, b.text]));
}

const example = setFiles(undefined);

/** What the document says the example folder holds: its mappings and the dictionaries they name. */
function mappingFolder(files: ReadonlyMap<string, string>): MappingFileSource[] {
  const mappings = [...files].filter(([name]) => name.endsWith('.mapping.json'));
  const dictionaries = new Set(
    mappings.flatMap(([, text]) =>
      Object.values((JSON.parse(text) as { codes?: Record<string, { file?: string }> }).codes ?? {}).flatMap((c) => (c.file ? [c.file] : []))
    )
  );
  return [...files].filter(([name]) => name.endsWith('.mapping.json') || dictionaries.has(name)).map(([name, text]) => ({ name, text }));
}

function exampleSet(): MappingSet {
  return loadMappingSet(mappingFolder(example));
}

/** Imports data files parents first, as the command line does whatever order they are given in. */
async function importFiles(medplum: LocalMedplum, set: MappingSet, names: string[]): Promise<ImportReport[]> {
  const withTables = await Promise.all(
    names.map(async (name) => ({ name, table: (await inspectCsv(csvFromText(name, fileText(name)), set.tables)).table.name }))
  );
  const order = set.tables.map((t) => t.name);
  withTables.sort((a, b) => order.indexOf(a.table) - order.indexOf(b.table));
  const reports: ImportReport[] = [];
  for (const { name } of withTables) {
    const { report } = await importCsv(medplum, csvFromText(name, fileText(name)), { tables: set.tables });
    reports.push(report);
  }
  return reports;
}

function fileText(name: string): string {
  const text = example.get(name);
  if (text === undefined) {
    throw new Error(`docs/mappings.md has no block marked file=${name}`);
  }
  return text;
}

function block(attr: string, value?: string): Block {
  const found = blocks.filter((b) => attr in b.attrs && (value === undefined || b.attrs[attr] === value));
  if (found.length !== 1) {
    throw new Error(`expected one block marked ${attr}${value ? `=${value}` : ''} in docs/mappings.md, found ${found.length}`);
  }
  return found[0];
}

function identifierValue(resource: Resource): string | undefined {
  return ((resource as { identifier?: Identifier[] }).identifier ?? [])[0]?.value;
}

/**
 * A resource as the document shows it: without id and meta, and with references written as
 * `Type/<identifier value>` for the resource that has that identifier (a `display` a server adds
 * to a reference is not shown).
 */
function asDocumentShows(resource: Resource, medplum: LocalMedplum): unknown {
  const { id: _id, meta: _meta, ...rest } = resource as Resource & { meta?: unknown };
  return JSON.parse(JSON.stringify(rest), (_key, value: unknown) => {
    const reference = (value as { reference?: unknown } | null)?.reference;
    if (typeof reference !== 'string') {
      return value;
    }
    const [type, id] = reference.split('/');
    const target = medplum.allResources(type as 'Patient').find((r) => r.id === id);
    return { reference: target ? `${type}/<${identifierValue(target)}>` : reference };
  });
}

/** The summary table of "Importing it": | file | table | rows | created | updated | unchanged | failed | skipped |. */
function summaryRows(): [string, string, number[]][] {
  return doc
    .split('\n')
    .map((line) => /^\| (\S+\.csv) \| (\S+) \|((?: \d+ \|){6})$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => [m[1], m[2], m[3].split('|').map((n) => n.trim()).filter(Boolean).map(Number)]);
}

const counts = (r: ImportReport): number[] => [r.rows, r.created, r.updated, r.unchanged, r.failed, r.skipped];

describe('docs/mappings.md: the worked example', () => {
  it('has the files of the example folder, which load as a mapping set with patients first', () => {
    expect([...example.keys()].sort()).toEqual(
      ['lab-results.mapping.json', 'lab-tests.csv', 'lab_results.csv', 'lab_results_april.csv', 'patients.csv', 'patients.mapping.json'].sort()
    );
    expect(mappingFolder(example).map((f) => f.name).sort()).toEqual(['lab-results.mapping.json', 'lab-tests.csv', 'patients.mapping.json']);
    const set = exampleSet();
    expect(set.tables.map((t) => t.name)).toEqual(['patients', 'lab-results']);
    expect(set.writes).toEqual(['Observation', 'Patient', 'ServiceRequest']);
  });

  it('imports into the reports and resources the document shows, field by field, and again unchanged', async () => {
    const set = exampleSet();
    const medplum = createLocalMedplum();
    // Given in the order of the document's command line: lab results first.
    const reports = await importFiles(medplum, set, ['lab_results.csv', 'patients.csv']);

    const summary = summaryRows();
    expect(summary.map(([file]) => file)).toEqual(['patients.csv', 'lab_results.csv']);
    expect(reports.map((r) => [r.file, r.table, counts(r)])).toEqual(summary);
    // Every member the document shows, as shown (a report may carry more, e.g. newer counters).
    const shownReport = JSON.parse(block('report', 'lab_results.csv').text) as ImportReport;
    expect(reports[1]).toMatchObject(shownReport);
    expect(reports[1].skips).toEqual(shownReport.skips);
    expect(reports[0].errors).toEqual([]);
    expect(reports[0].warnings).toEqual([]);

    // "Two Patients, four ServiceRequests and four Observations."
    expect(doc).toContain('Two Patients, four ServiceRequests and four Observations.');
    expect(['Patient', 'ServiceRequest', 'Observation'].map((t) => medplum.allResources(t as 'Patient').length)).toEqual([2, 4, 4]);

    const shown = blocks.filter((b) => 'resource' in b.attrs);
    expect(shown.length).toBeGreaterThanOrEqual(5);
    for (const b of shown) {
      const expected = JSON.parse(b.text) as Resource;
      const value = identifierValue(expected);
      const stored = medplum.allResources(expected.resourceType as 'Patient').filter((r) => identifierValue(r) === value);
      expect(stored, `docs/mappings.md line ${b.line}: ${expected.resourceType} ${value}`).toHaveLength(1);
      expect(asDocumentShows(stored[0], medplum), `docs/mappings.md line ${b.line}`).toEqual(expected);
    }

    // "Importing both files again reports every row unchanged (the two skipped rows skipped again)."
    const again = await importFiles(medplum, set, ['patients.csv', 'lab_results.csv']);
    expect(again.map(counts)).toEqual([
      [2, 0, 0, 2, 0, 0],
      [6, 0, 0, 4, 0, 2],
    ]);
    expect(again[1].skips).toEqual(shownReport.skips);
  });

  it('fails the rows of "When rows are wrong" with the messages the document shows, and updates the corrected result', async () => {
    const set = exampleSet();
    const medplum = createLocalMedplum();
    await importFiles(medplum, set, ['patients.csv', 'lab_results.csv']);
    const [report] = await importFiles(medplum, set, ['lab_results_april.csv']);

    expect(report.errors).toEqual(JSON.parse(block('errors', 'lab_results_april.csv').text));
    // "four rows fail and the last one updates the Observation A24-0311-GLU (now corrected, 180 mg/dL)"
    expect(counts(report)).toEqual([5, 0, 1, 0, 4, 0]);
    const glucose = medplum.allResources('Observation').filter((o) => identifierValue(o) === 'A24-0311-GLU');
    expect(glucose).toHaveLength(1);
    expect(glucose[0]).toMatchObject({ status: 'corrected', valueQuantity: { value: 180, unit: 'mg/dL' }, note: [{ text: 'Corrected: re-run' }] });
    expect(medplum.allResources('Observation')).toHaveLength(4);
  });
});

describe('docs/mappings.md: write modes, as the reference says', () => {
  // "merge (the default): [...] the elements this mapping writes are set from the row, or removed
  // when the row leaves them empty; every other element is kept [...]. An element the mapping
  // writes that was changed in Medplum since the importer last wrote it is a conflict: it is kept,
  // the rest of the row is written, and the row ends conflict [...]. With --on-conflict overwrite
  // [...] the row's value is written instead. replace: the resource becomes exactly what the
  // mapping writes for the row [...], whatever was changed in Medplum."
  it.each([
    ['merge', 'keep'],
    ['merge', 'overwrite'],
    ['replace', 'keep'],
  ] as const)('%s (on conflict: %s): a re-import after a phone number was added and the family name changed in Medplum, and the Sex cell emptied', async (mode, onConflict) => {
    expect(doc).toContain('**Write modes.** `merge` (the default)');
    const patients = JSON.parse(fileText('patients.mapping.json')) as { resources: { write?: string }[] };
    if (mode === 'replace') {
      patients.resources[0].write = 'replace';
    }
    const set = loadMappingSet([{ name: 'patients.mapping.json', text: JSON.stringify(patients) }]);
    const medplum = createLocalMedplum();
    await importCsv(medplum, csvFromText('patients.csv', fileText('patients.csv')), { tables: set.tables });
    const grace = medplum.allResources('Patient').find((p) => identifierValue(p) === '100234') as Resource & Record<string, unknown>;
    await medplum.updateResource({ ...grace, name: [{ family: 'Okafor-Reyes', given: ['Grace'] }], telecom: [{ system: 'phone', value: '555-0100' }] } as Resource);

    const changed = fileText('patients.csv').replace('Okafor,Grace,03/14/1958,F', 'Okafor,Grace,03/14/1958,');
    const { report } = await importCsv(medplum, csvFromText('patients.csv', changed), {
      tables: set.tables,
      settings: { ...defaultSettings(), onConflict },
    });
    const after = medplum.allResources('Patient').find((p) => p.id === grace.id) as Resource & Record<string, unknown>;
    // The emptied Sex cell removes gender in every mode.
    expect(after.gender).toBeUndefined();
    if (mode === 'merge' && onConflict === 'keep') {
      expect(report).toMatchObject({ rows: 2, updated: 0, unchanged: 1, conflict: 1 });
      expect(report.conflicts).toEqual([{ row: 2, sourceId: '100234', paths: ['name[0].family'] }]);
      expect(doc).toContain('`{ "row": 2, "sourceId": "100234", "paths": ["name[0].family"] }`');
      expect(after.name).toEqual([{ family: 'Okafor-Reyes', given: ['Grace'] }]);
    } else {
      expect(report).toMatchObject({ rows: 2, updated: 1, unchanged: 1, conflict: 0 });
      expect(after.name).toEqual([{ family: 'Okafor', given: ['Grace'] }]);
    }
    expect(after.telecom).toEqual(mode === 'merge' ? [{ system: 'phone', value: '555-0100' }] : undefined);
  });
});

describe('docs/mappings.md: the mapping errors it shows', () => {
  it('are the messages the engine gives for the draft vitals mapping', () => {
    const files = [
      { name: 'patients.mapping.json', text: fileText('patients.mapping.json') },
      ...[...setFiles('vitals')].map(([name, text]) => ({ name, text })),
    ];
    expect(files.map((f) => f.name)).toEqual(['patients.mapping.json', 'vitals.mapping.json']);
    let error: unknown;
    try {
      loadMappingSet(files);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(MappingSetError);
    expect((error as Error).message + '\n').toBe(block('error', 'vitals').text);
  });

  it("the load-time messages quoted in the reference are the engine's", () => {
    // A sample of the load-time messages quoted in the reference, each from a one-line change to
    // the example: the quoted text must be what the engine says.
    const base = JSON.parse(fileText('lab-results.mapping.json')) as Record<string, any>;
    const problems = (change: (m: Record<string, any>) => void): string[] => {
      const mapping = structuredClone(base);
      change(mapping);
      try {
        loadMappingSet([...mappingFolder(example).filter((f) => f.name !== 'lab-results.mapping.json'), { name: 'lab-results.mapping.json', text: JSON.stringify(mapping) }]);
        return [];
      } catch (err) {
        return (err as MappingSetError).problems.map((p) => p.message);
      }
    };
    const elements = (m: Record<string, any>): Record<string, any> => m.resources[1].elements;
    const quoted = (message: string): void => {
      expect(doc.replace(/\s*\n\s*/g, ' '), message).toContain(message);
    };
    for (const [change, message] of [
      [(m) => (elements(m).name = '{Test Name}'), 'Observation element path "name": Observation has no element "name"'],
      [
        (m) => {
          elements(m).effective = elements(m).effectiveDateTime;
          delete elements(m).effectiveDateTime;
        },
        'Observation element path "effective": "effective" is a choice of types: name its type: effectiveDateTime, effectivePeriod, effectiveTiming or effectiveInstant',
      ],
      [(m) => (elements(m)['code[0].text'] = '{Test Name}'), 'Observation element path "code[0].text": "code" does not repeat: remove the index [0]'],
      [(m) => (elements(m)['code.text.x'] = '{Test Name}'), 'Observation element path "code.text.x": "code.text" is a string (a primitive value): the path cannot continue with ".x"'],
      [(m) => (elements(m)['code .text'] = '{Test Name}'), 'code.text is written twice'],
      [(m) => (elements(m).valueQuantity.maxLength = 5), '"maxLength" applies to text elements, not to Quantity'],
      [(m) => (elements(m).subject = { reference: { resource: 'order' } }), 'subject cannot refer to a ServiceRequest (it refers to Patient, Group, Device, Location)'],
      [(m) => (m.defaults.dateTimeFormats = ['MM/DD/YYYY HH:mm']), 'unknown token "HH" in format "MM/DD/YYYY HH:mm" (write hh)'],
      [(m) => (m.columns.Extra = {}), 'column(s) extra are declared but not used: use them, mark them required (to recognise the file), or leave them out'],
    ] as [(m: Record<string, any>) => void, string][]) {
      expect(problems(change)).toContain(message);
      quoted(message);
    }
    expect(problems((m) => (m.codes.status.values.F = 'done'))).toEqual([
      "code map 'status' gives 'done', not in the required value set http://hl7.org/fhir/ValueSet/observation-status (registered, preliminary, final, amended, corrected, cancelled, entered-in-error, unknown)",
    ]);
    quoted("code map 'status' gives 'done', not in the required value set http://hl7.org/fhir/ValueSet/observation-status (registered, preliminary, final,");
  });
});
