// Issue 5, part 2: a corpus of malformed and awkward CSV files (test/fixtures/bad-input/), each
// with its asserted outcome. Every file goes through the three ways a file reaches the engine:
//   text: csvFromText over the file read as UTF-8 (bot text input, JSON { csv }),
//   file: csvFromFile, streaming the bytes from disk with a strict UTF-8 decoder (command line),
//   bot:  the built bot (dist/import-csv.js, run as Medplum's vmcontext runs it) given an upload,
//         a DocumentReference whose Binary is downloaded from this Medplum and decoded from its
//         bytes, imported under the upload's Task.
// An outcome is either a whole-file error naming the file and the problem, with nothing written
// (for an upload: its Task failed with that reason), or a report with exact counts, error rows
// and columns, while the good rows land in Medplum.
import type { ClinicalImpression, CodeSystem, ConceptMap, Encounter, Patient, Task } from '@medplum/fhirtypes';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvFromText, ImportFileError, importCsv, MAX_CSV_BYTES } from '../../src/lib';
import type { ImportReport } from '../../src/lib';
import { csvFromFile } from '../../src/lib/csv/file';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { guideCsv } from '../helpers/guide';
import type { UploadJobResult } from '../../src/lib/jobs/upload-job';
import { importTasks, uploadCsv } from '../helpers/uploads';
import { runBotInVm } from '../helpers/vm-runner';

const FIXTURES = join(__dirname, '..', 'fixtures', 'bad-input');
const distPath = join(__dirname, '..', '..', 'dist', 'import-csv.js');

type Path = 'text' | 'file' | 'bot';
const PATHS: readonly Path[] = ['text', 'file', 'bot'];

/** What must be in Medplum before the file: nothing, or the guide's patients and condition catalog. */
type Setup = 'none' | 'parents';

type ErrorRow = [row: number, column: string | undefined, sourceId: string | undefined, message: string | RegExp];

interface BaseCase {
  file: string;
  /** Built at test time instead of read from the fixtures folder (big files). */
  generate?: () => string | Uint8Array;
  setup?: Setup;
}

/** (a) A problem with the file as a whole: thrown before anything is written. */
interface FileErrorCase extends BaseCase {
  /** The problem, after "<file>: ", for every path (for an upload: the reason its Task failed). */
  error: RegExp;
  /**
   * The problem on the text path when it differs: text decoded before it reached the engine has
   * lost the bytes that tell Windows-1252 from other non-UTF-8 text.
   */
  textError?: RegExp;
}

/** (b) A report: exact counts and errors, and the good rows in Medplum. */
interface ReportCase extends BaseCase {
  table: string;
  counts: Partial<Pick<ImportReport, 'rows' | 'created' | 'updated' | 'unchanged' | 'failed' | 'skipped'>>;
  errors?: ErrorRow[];
  skips?: [row: number, reason: string][];
  warnings?: string[];
  /** Source identifiers of the resources of each type after the import (setup resources excluded). */
  landed: Partial<Record<'Patient' | 'Encounter' | 'ClinicalImpression' | 'Condition', string[]>>;
  check?: (medplum: LocalMedplum) => void | Promise<void>;
}

type Case = FileErrorCase | ReportCase;

const PATIENTS = 'patient_id,first_name,last_name,birth_date,gender';
const ENCOUNTERS = 'encounter_id,patient_id,date,type,note';
const FIELDS = (n: number): RegExp =>
  new RegExp(
    `^row has ${n} fields but the header has 5 \\(${
      n > 5 ? 'a value containing the delimiter without quotes\\?' : 'a missing value, or a line break inside an unquoted value\\?'
    }\\)$`
  );
const GENDER = /^gender( '[^']*')? is not a known code: one of M, F, O, U$/;
const NOT_YMD = 'birth_date must be a date in the format YYYY-MM-DD';
const NOT_REAL = 'birth_date is not a real calendar date';
const ID_CHARS = (kinds: string): string => `patient_id must not contain ${kinds} (it becomes a FHIR identifier)`;
const INVISIBLE = 'invisible or formatting characters (zero-width, bidi, soft hyphen, byte-order mark, line separators)';
const NOT_CSV = (what: string, hint = ''): RegExp => new RegExp(`^the file is ${escape(what)}, not CSV text${escape(hint)}$`);
const SAVE_AS_CSV = ': open it in Excel and save it as "CSV UTF-8 (Comma delimited)"';
const WINDOWS_1252 = (line: number): RegExp =>
  new RegExp(`^the file is not valid UTF-8 \\(undecodable bytes on line ${line}\\); it looks like Windows-1252/Latin-1 text: re-export it as CSV UTF-8$`);
const NOT_UTF8 = (line: number): RegExp =>
  new RegExp(`^the file is not valid UTF-8 \\(undecodable bytes on line ${line}\\); re-export it as UTF-8$`);

const cases: Case[] = [
  // ---------------------------------------------------------------- quoting
  { file: 'unclosed-quote.csv', error: /^unclosed quote in the record starting at row 3$/ },
  { file: 'unclosed-quote-in-last-note.csv', setup: 'parents', error: /^unclosed quote in the record starting at row 3$/ },
  {
    file: 'malformed-quotes.csv',
    table: 'patients',
    counts: { rows: 4, created: 3, failed: 1 },
    errors: [[3, undefined, undefined, 'malformed quoting (Trailing quote on quoted field is malformed)']],
    landed: { Patient: ['P001', 'P003', 'P004'] },
    check: (medplum) => {
      expect(patientName(medplum, 'P003')).toEqual({ given: ['Pat'], family: 'O"Brien' });
      expect(patientName(medplum, 'P004')).toEqual({ given: ['Ann "Annie"'], family: 'Lee' });
    },
  },
  {
    file: 'quoted-header.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    landed: { Patient: ['P001', 'P002'] },
    check: (medplum) => expect(patientName(medplum, 'P002')).toEqual({ given: ['Jane'], family: 'Smith, Jr' }),
  },
  {
    // Rows are spreadsheet rows: a note over three lines is one row, so E003 is row 4.
    file: 'encounter-multiline-notes.csv',
    setup: 'parents',
    table: 'encounters',
    counts: { rows: 4, created: 3, failed: 1 },
    errors: [[4, 'type', 'E003', /^type '[^']*' is not a known code \(code map 'encounter-class'\)$/]],
    landed: { Encounter: ['E001', 'E002', 'E004'], ClinicalImpression: ['E001', 'E002'] },
    check: (medplum) =>
      expect(noteOf(medplum, 'E001')).toBe('Line one.\nLine two, with a comma.\r\nLine three: "quoted".'),
  },

  // ---------------------------------------------------------------- ragged and empty rows
  {
    file: 'ragged-rows.csv',
    table: 'patients',
    counts: { rows: 6, created: 2, failed: 4 },
    errors: [
      [3, undefined, 'P002', FIELDS(4)],
      [4, undefined, 'P003', FIELDS(6)],
      [5, undefined, 'P004', FIELDS(2)],
      [6, undefined, 'P005', FIELDS(7)],
    ],
    landed: { Patient: ['P001', 'P006'] },
  },
  {
    // ",,,," (and whitespace between delimiters) is a row with every column empty: skipped with a
    // reason; ",,," has too few fields for the header and fails.
    file: 'only-delimiters.csv',
    table: 'patients',
    counts: { rows: 5, created: 2, skipped: 2, failed: 1 },
    skips: [
      [3, 'every column is empty'],
      [4, 'every column is empty'],
    ],
    errors: [[5, undefined, undefined, FIELDS(4)]],
    landed: { Patient: ['P001', 'P002'] },
  },
  {
    // Blank lines keep their row numbers but are not rows; a line of spaces is blank too.
    file: 'blank-lines.csv',
    table: 'patients',
    counts: { rows: 3, created: 2, failed: 1 },
    errors: [[7, 'gender', 'P003', GENDER]],
    landed: { Patient: ['P001', 'P002'] },
  },
  {
    // A CRLF export with one LF-only line (rows appended in another editor): the parser uses the
    // file's CRLF line ends, so that line and the next read as one row of 9 fields, which fails;
    // no half-row is imported.
    file: 'mixed-line-ends.csv',
    table: 'patients',
    counts: { rows: 3, created: 2, failed: 1 },
    errors: [[3, undefined, 'P002', FIELDS(9)]],
    landed: { Patient: ['P001', 'P004'] },
  },

  // ---------------------------------------------------------------- delimiters
  {
    file: 'semicolon-separated.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    warnings: ['read as semicolon-separated values'],
    landed: { Patient: ['P001', 'P002'] },
    check: (medplum) => expect(patientName(medplum, 'P001')).toEqual({ given: ['John'], family: 'Doe, Jr' }),
  },
  {
    file: 'tab-separated.tsv',
    table: 'patients',
    counts: { rows: 3, created: 2, failed: 1 },
    errors: [[4, 'gender', 'P003', GENDER]],
    warnings: ['read as tab-separated values'],
    landed: { Patient: ['P001', 'P002'] },
    check: (medplum) => {
      expect(patientName(medplum, 'P001')).toEqual({ given: ['John'], family: 'Doe, Jr' });
      expect(patientName(medplum, 'P002')).toEqual({ given: ['Jane'], family: 'Smith\tSr' });
    },
  },
  {
    file: 'pipe-separated.txt',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    warnings: ['read as pipe-separated values'],
    landed: { Patient: ['P001', 'P002'] },
  },
  {
    // Excel's "sep=;" first line is rejected (not supported): the header must be row 1 and the
    // delimiter is detected from it anyway.
    file: 'excel-sep-line.csv',
    error:
      /^row 1 is a "sep=" line \(an Excel delimiter hint\), not the header: delete that line and import again \(the delimiter is detected from the header\)$/,
  },
  {
    // Every row ends with the delimiter: an empty column with no name and no values, ignored.
    file: 'trailing-delimiter.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    warnings: ['header column 6 has no name and no values (trailing delimiters, as spreadsheets write them): ignored'],
    landed: { Patient: ['P001', 'P002'] },
  },
  {
    // Excel "CSV UTF-8" with two formatted but empty columns at the right: BOM, CRLF, ",," on every row.
    file: 'excel-trailing-empty-columns.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    warnings: ['header columns 6-7 have no name and no values (trailing delimiters, as spreadsheets write them): ignored'],
    landed: { Patient: ['P001', 'P002'] },
    check: (medplum) => expect(patient(medplum, 'P002')).toMatchObject({ birthDate: '1985-03-22', gender: 'female' }),
  },

  // ---------------------------------------------------------------- encodings and line ends
  {
    file: 'utf8-bom.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    landed: { Patient: ['P001', 'P002'] },
  },
  {
    // Excel "CSV UTF-8" in a European locale: byte-order mark, semicolons, CRLF.
    file: 'excel-utf8-bom-semicolon-crlf.csv',
    table: 'patients',
    counts: { rows: 3, created: 3 },
    warnings: ['read as semicolon-separated values'],
    landed: { Patient: ['P001', 'P002', 'P003'] },
    check: (medplum) => {
      expect(patientName(medplum, 'P001')).toEqual({ given: ['J\u00fcrgen'], family: 'M\u00fcller' });
      expect(patientName(medplum, 'P002')).toEqual({ given: ['\u00c5se'], family: '\u00d8verg\u00e5rd' });
      expect(patientName(medplum, 'P003')).toEqual({ given: ['\u0141ukasz'], family: 'Wi\u015bniewski' });
      expect(patient(medplum, 'P003').gender).toBe('male');
    },
  },
  {
    file: 'crlf.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    landed: { Patient: ['P001', 'P002'] },
    check: (medplum) => expect(['P001', 'P002'].map((id) => patient(medplum, id).gender)).toEqual(['male', 'female']),
  },
  {
    // Classic Mac OS line ends (CR only).
    file: 'cr-only-line-ends.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    landed: { Patient: ['P001', 'P002'] },
    check: (medplum) => expect(['P001', 'P002'].map((id) => patient(medplum, id).gender)).toEqual(['male', 'female']),
  },
  {
    file: 'latin1.csv',
    error: WINDOWS_1252(2),
    textError: NOT_UTF8(2),
  },
  {
    file: 'windows-1252-smart-quotes.csv',
    error: WINDOWS_1252(2),
    textError: NOT_UTF8(2),
  },
  {
    // Excel "Unicode Text": UTF-16LE with a byte-order mark, tab-separated.
    file: 'utf16le-bom.txt',
    error: /^the file is UTF-16 text, not UTF-8; re-export it as UTF-8$/,
  },
  {
    file: 'utf16be-bom.csv',
    error: /^the file is UTF-16 text, not UTF-8; re-export it as UTF-8$/,
  },
  {
    // A 1x1 PNG renamed to .csv.
    file: 'binary-png.csv',
    error: NOT_CSV('a PNG image'),
  },
  {
    // An Excel workbook uploaded instead of its CSV export.
    file: 'excel-workbook.xlsx',
    error: NOT_CSV('an Excel workbook (.xlsx)', SAVE_AS_CSV),
  },
  {
    // A legacy Excel 97-2003 workbook: the compound-file header (built here), then empty sectors.
    file: 'excel-97-workbook.xls',
    generate: () => legacyExcelBytes(),
    error: NOT_CSV('a legacy Excel 97-2003 workbook (.xls)', SAVE_AS_CSV),
  },
  {
    file: 'patients-report.pdf',
    error: NOT_CSV('a PDF document', ': export the data as CSV instead'),
  },
  {
    // A gateway's error page saved in place of the export.
    file: 'html-error-page.csv',
    error: NOT_CSV(
      'an HTML page (perhaps an error or login page saved instead of the export)',
      ': download the export again'
    ),
  },
  {
    file: 'random-bytes.csv',
    error: /^the file is binary, not CSV text \(NUL byte on line 1\)$/,
  },

  // ---------------------------------------------------------------- empty and nearly empty files
  { file: 'empty.csv', error: /^the file is empty \(no header row\)$/ },
  { file: 'whitespace-only.csv', error: /^the file is empty \(only blank lines, no header row\)$/ },
  { file: 'only-blank-lines.csv', error: /^the file is empty \(only blank lines, no header row\)$/ },
  {
    // Rejected, not guessed: the header must be row 1 so that row numbers match the spreadsheet.
    file: 'header-on-row-2.csv',
    error: /^row 1 must be the header row, but it is blank \(the first non-blank row is row 2\)$/,
  },
  {
    file: 'header-only.csv',
    table: 'patients',
    counts: { rows: 0 },
    warnings: ['the file has a header but no data rows'],
    landed: { Patient: [] },
  },

  // ---------------------------------------------------------------- headers
  { file: 'duplicate-header.csv', error: /^column last_name appears more than once in the header$/ },
  {
    // "First Name" and "first_name" are the same column once normalised.
    file: 'duplicate-header-after-normalising.csv',
    error: /^column first_name appears more than once in the header$/,
  },
  {
    file: 'extra-columns.csv',
    table: 'patients',
    counts: { rows: 2, created: 2 },
    warnings: ['column(s) not used by table patients, ignored: middle_name, ssn, insurance_plan'],
    landed: { Patient: ['P001', 'P002'] },
    check: (medplum) => {
      expect(patientName(medplum, 'P001')).toEqual({ given: ['John'], family: 'Doe' });
      expect(JSON.stringify(medplum.allResources('Patient'))).not.toMatch(/078-05-1120|219-09-9999|Acme/);
    },
  },
  {
    file: 'header-case-and-spaces.csv',
    table: 'patients',
    counts: { rows: 1, created: 1 },
    landed: { Patient: ['P001'] },
    check: (medplum) => expect(patient(medplum, 'P001')).toMatchObject({ birthDate: '1980-07-15', gender: 'male' }),
  },
  {
    // Spaces and tabs around headers and values (quoted or not), and no-break spaces, are trimmed.
    file: 'stray-whitespace.csv',
    table: 'patients',
    counts: { rows: 3, created: 3 },
    landed: { Patient: ['P001', 'P002', 'P003'] },
    check: (medplum) => {
      expect(patient(medplum, 'P001')).toMatchObject({ name: [{ given: ['John'], family: 'Doe' }], birthDate: '1980-07-15', gender: 'male' });
      expect(patient(medplum, 'P002')).toMatchObject({ name: [{ given: ['Jane'], family: 'Smith' }], birthDate: '1985-03-22', gender: 'female' });
      expect(patientName(medplum, 'P003')).toEqual({ given: ['Ann'], family: 'Lee' });
    },
  },
  {
    file: 'wrong-table.csv',
    error:
      /^the header matches no known table \(conditions: condition_id, condition_name, icd10_code; patients: patient_id, first_name, last_name, birth_date, gender; encounters: .*; patient_conditions: .*\)$/,
  },
  {
    // A denormalised export: every column of patient_conditions and of the conditions catalog, four
    // of each: neither fits better, so the file is refused rather than guessed.
    file: 'header-matches-two-tables.csv',
    error:
      /^the header fits more than one table equally \(conditions, patient_conditions\): name the table to import it as \(--table on the command line, "table" in the bot input\)$/,
  },
  {
    // The header row was left out: row 1 is a patient, whose repeated name must not be echoed as a column.
    file: 'headerless-repeated-cells.csv',
    error: /^row 1 looks like data, not a header row: add the header row$/,
  },
  {
    // A rejected-rows file, fixed and uploaded again: the apostrophes it put before = + - @ and tab
    // are removed (header cells too), others ('t Hooft) stay; source_row and import_error are ignored.
    file: 'rejected-rows-fixed.csv',
    table: 'patients',
    counts: { rows: 3, created: 3 },
    warnings: ['column(s) not used by table patients, ignored: column 6, source_row, import_error'],
    landed: { Patient: ['=1+2', '@P3', 'P002'] },
    check: (medplum) => {
      expect(patientName(medplum, '=1+2')).toEqual({ given: ['+Ann'], family: '-Lee' });
      expect(patientName(medplum, 'P002')).toEqual({ given: ['Jane'], family: "'t Hooft" });
      expect(patientName(medplum, '@P3')).toEqual({ given: ['Tabbed'], family: 'Doe' });
    },
  },
  {
    file: 'missing-required-column.csv',
    error: /^the header looks like the 'patients' table but is missing required column\(s\): gender$/,
  },
  {
    // Paged report exports repeat the header: that row is data to the importer and fails on its
    // date and gender (nothing is imported from it).
    file: 'repeated-header-row.csv',
    table: 'patients',
    counts: { rows: 3, created: 2, failed: 1 },
    errors: [
      [3, 'birth_date', 'patient_id', NOT_YMD],
      [3, 'gender', 'patient_id', GENDER],
    ],
    landed: { Patient: ['P001', 'P002'] },
  },

  // ---------------------------------------------------------------- values
  {
    // 0001-01-01 (a legacy "unknown" placeholder) is refused: years before 1800 are, with their own message.
    file: 'impossible-dates.csv',
    table: 'patients',
    counts: { rows: 7, created: 1, failed: 6 },
    errors: [
      [2, 'birth_date', 'P001', NOT_REAL],
      [3, 'birth_date', 'P002', NOT_REAL],
      [4, 'birth_date', 'P003', NOT_REAL],
      [6, 'birth_date', 'P005', NOT_REAL],
      [7, 'birth_date', 'P006', 'birth_date is before 1800 (a placeholder date?)'],
      [8, 'birth_date', 'P007', NOT_REAL],
    ],
    landed: { Patient: ['P004'] },
    check: (medplum) => expect(patient(medplum, 'P004').birthDate).toBe('2024-02-29'),
  },
  {
    // 03/04/2020 is ambiguous (March or April): no other format is guessed.
    file: 'date-formats.csv',
    table: 'patients',
    counts: { rows: 9, created: 1, failed: 8 },
    errors: ['P001', 'P002', 'P003', 'P004', 'P005', 'P006', 'P007', 'P008'].map(
      (id, i): ErrorRow => [i + 2, 'birth_date', id, NOT_YMD]
    ),
    landed: { Patient: ['P009'] },
  },
  {
    file: 'future-birth-dates.csv',
    table: 'patients',
    counts: { rows: 3, created: 1, failed: 2 },
    errors: [
      [2, 'birth_date', 'P001', 'birth_date is in the future'],
      [3, 'birth_date', 'P002', 'birth_date is in the future'],
    ],
    landed: { Patient: ['P003'] },
  },
  {
    // Codes match case-insensitively after trimming; an empty gender is allowed; words are not codes.
    file: 'unknown-gender-codes.csv',
    table: 'patients',
    counts: { rows: 8, created: 4, failed: 4 },
    errors: [
      [2, 'gender', 'P001', GENDER],
      [3, 'gender', 'P002', GENDER],
      [4, 'gender', 'P003', GENDER],
      [5, 'gender', 'P004', GENDER],
    ],
    landed: { Patient: ['P005', 'P006', 'P007', 'P008'] },
    check: (medplum) =>
      expect(['P005', 'P006', 'P007', 'P008'].map((id) => patient(medplum, id).gender)).toEqual([
        'female',
        'male',
        undefined,
        'unknown',
      ]),
  },
  {
    // Database NULL markers are not blanks: they fail where a date or code is expected.
    file: 'sql-null-markers.csv',
    table: 'patients',
    counts: { rows: 4, created: 1, failed: 3 },
    errors: [
      [2, 'birth_date', 'P001', NOT_YMD],
      [3, 'gender', 'P002', GENDER],
      [4, 'birth_date', 'P003', NOT_YMD],
      [4, 'gender', 'P003', GENDER],
    ],
    landed: { Patient: ['P004'] },
  },
  {
    file: 'missing-ids.csv',
    table: 'patients',
    counts: { rows: 7, created: 3, failed: 4 },
    errors: [
      [3, 'patient_id', undefined, 'patient_id is required'],
      [4, 'patient_id', undefined, 'patient_id is required'],
      [5, 'patient_id', 'P 004', ID_CHARS('spaces or other whitespace')],
      [7, 'patient_id', 'P|006', ID_CHARS("'|'")],
    ],
    // ',' is escaped in searches, so P,005 is an ordinary id now.
    landed: { Patient: ['P,005', 'P001', 'P007'] },
  },
  {
    // Ids with URL- and search-significant characters are escaped and land on their own Patients;
    // the guide's P001 and P002 are never touched. '|', zero-width, bidi and control characters
    // fail their rows, and the report shows them as <U+XXXX>.
    file: 'ids-special-characters.csv',
    setup: 'parents',
    table: 'patients',
    counts: { rows: 9, created: 5, failed: 4 },
    errors: [
      [6, 'patient_id', 'P001|x', ID_CHARS("'|'")],
      [7, 'patient_id', 'P001<U+200B>', ID_CHARS(INVISIBLE)],
      [8, 'patient_id', '<U+200F>P002', ID_CHARS(INVISIBLE)],
      [9, 'patient_id', 'P001<U+0007>', ID_CHARS('control characters')],
    ],
    landed: { Patient: ['P001', 'P002', 'P001?x=1', 'P002&_id=x', 'P001#frag', 'P001,P002', 'P003'] },
    check: async (medplum) => {
      expect(patientName(medplum, 'P001')).toEqual({ given: ['John'], family: 'Doe' });
      expect(patientName(medplum, 'P002')).toEqual({ given: ['Jane'], family: 'Smith' });
      for (const id of ['P001', 'P002']) {
        const history = await medplum.readHistory('Patient', patient(medplum, id).id as string);
        expect(history.entry, `${id} versions`).toHaveLength(1);
      }
      expect(patientName(medplum, 'P001,P002')).toEqual({ given: ['Comma'], family: 'Id' });
    },
  },
  {
    // The first occurrence wins: an exact repeat is skipped, a repeat with different data fails.
    file: 'repeated-ids.csv',
    table: 'patients',
    counts: { rows: 5, created: 3, failed: 1, skipped: 1 },
    errors: [[5, 'patient_id', 'P002', 'duplicate patient_id P002: first seen at row 3']],
    skips: [[4, 'exact duplicate of row 2']],
    landed: { Patient: ['P001', 'P002', 'P003'] },
    check: (medplum) => expect(patientName(medplum, 'P002')).toEqual({ given: ['Jane'], family: 'Smith' }),
  },
  {
    // Values starting with = + - @ are text (never evaluated), also as identifiers; a re-run
    // matches every row again ('+' is percent-encoded in the conditional PUT).
    file: 'formula-like-values.csv',
    table: 'patients',
    counts: { rows: 5, created: 5 },
    landed: { Patient: ['+P2', '-P3', '007', '=1+2', '@P4'] },
    check: async (medplum) => {
      expect(patientName(medplum, '=1+2')).toEqual({ given: ['=HYPERLINK("http://evil.example","click")'], family: '=SUM(A1:A3)' });
      expect(patientName(medplum, '+P2')).toEqual({ given: ['+44 20 7946 0000'], family: '-Smith' });
      expect(patientName(medplum, '-P3')).toEqual({ given: ['-1'], family: '@handle' });
      expect(patientName(medplum, '@P4')).toEqual({ given: ['@SUM(1)'], family: '+Doe' });
      expect(patientName(medplum, '007')).toEqual({ given: ['="00123"'], family: 'Bond' });
      const again = await importCsv(medplum, csvFromText('formula-like-values.csv', fixtureText('formula-like-values.csv')));
      expect(again.report).toMatchObject({ rows: 5, unchanged: 5, created: 0, failed: 0 });
      expect(medplum.allResources('Patient')).toHaveLength(5);
    },
  },
  {
    file: 'many-scripts.csv',
    table: 'patients',
    counts: { rows: 12, created: 12 },
    landed: { Patient: ['S01', 'S02', 'S03', 'S04', 'S05', 'S06', 'S07', 'S08', 'S09', 'S10', 'S11', 'S12'] },
    check: (medplum) => {
      const expected: Record<string, [string, string]> = {
        S01: ['\u5c0f\u660e', '\u738b'],
        S02: ['\u0645\u062d\u0645\u062f', '\u0627\u0644\u0639\u0644\u064a'],
        S03: ['\u0418\u0432\u0430\u043d', '\u041f\u0435\u0442\u0440\u043e\u0432'],
        S04: ['\u0930\u093e\u092e', '\u0936\u0930\u094d\u092e\u093e'],
        S05: ['\u{1F600}', '\u{1F389}Smith'],
        S06: ['\u{1F469}\u200d\u{1F469}\u200d\u{1F467}', '\u{1F1EF}\u{1F1F5}'],
        // Combining accents stay decomposed (no Unicode normalisation).
        S07: ['Jose\u0301', 'Mu\u0308ller'],
        S08: ['\ubbfc\uc900', '\uae40'],
        S09: ['\u0e2a\u0e21\u0e0a\u0e32\u0e22', '\u0e43\u0e08\u0e14\u0e35'],
        S10: ['\u05d3\u05d5\u05d3', '\u05db\u05d4\u05df'],
        S11: ['Zo\u00eb', '\u01c4uri\u0107'],
        S12: ['\u1f08\u03bb\u03ad\u03be\u03b1\u03bd\u03b4\u03c1\u03bf\u03c2', '\u03a0\u03b1\u03c0\u03b1\u03b4\u03cc\u03c0\u03bf\u03c5\u03bb\u03bf\u03c2'],
      };
      for (const [id, [given, family]] of Object.entries(expected)) {
        expect(patientName(medplum, id), id).toEqual({ given: [given], family });
      }
    },
  },

  // ---------------------------------------------------------------- the other tables
  {
    file: 'encounter-types-and-dates.csv',
    setup: 'parents',
    table: 'encounters',
    counts: { rows: 12, created: 3, failed: 9 },
    errors: [
      [5, 'type', 'E004', /^type '[^']*' is not a known code \(code map 'encounter-class'\)$/],
      [6, 'type', 'E005', /^type '[^']*' is not a known code \(code map 'encounter-class'\)$/],
      [7, 'type', 'E006', 'type is required'],
      [8, 'date', 'E007', 'date has an impossible time of day'],
      [9, 'date', 'E008', 'date is not a real calendar date'],
      [10, 'date', 'E009', 'date must be a date-time in the format ISO 8601'],
      [11, 'date', 'E010', 'date is in the future'],
      [
        12,
        'patient_id',
        'E011',
        'patient_id P999 is not in Medplum (no Patient with identifier https://legacy-ehr.example.org/fhir/patient-id|P999); import it first',
      ],
      [13, 'patient_id', 'E012', 'patient_id is required'],
    ],
    landed: { Encounter: ['E001', 'E002', 'E003'], ClinicalImpression: [] },
    check: (medplum) => {
      const summary = (id: string): [string | undefined, string | undefined] => {
        const encounter = byIdentifier<Encounter>(medplum, 'Encounter', id);
        return [encounter.class.code, encounter.period?.start];
      };
      expect(summary('E001')).toEqual(['AMB', '2023-05-01']);
      expect(summary('E002')).toEqual(['EMER', '2023-05-01T14:30:00Z']);
      expect(summary('E003')).toEqual(['VR', '2023-05-01T14:30:00+02:00']);
    },
  },
  {
    // Catalog rows: lower-case and padded ICD-10 codes are normalised; bad rows fail alone.
    file: 'conditions-catalog-awkward.csv',
    table: 'conditions',
    counts: { rows: 7, created: 4, failed: 3 },
    errors: [
      [5, 'icd10_code', 'C004', 'icd10_code is not an ICD-10 code (letter, two digits, optional dot and up to 4 more)'],
      [6, 'condition_name', 'C005', 'condition_name is required'],
      [7, 'condition_id', 'C001', 'duplicate condition_id C001: first seen at row 2'],
    ],
    landed: {},
    check: (medplum) => {
      const [codeSystem] = medplum.allResources<CodeSystem>('CodeSystem');
      expect(codeSystem.concept?.map((c) => [c.code, c.display])).toEqual([
        ['C001', 'Essential hypertension'],
        ['C002', 'Type 2 diabetes, without complications'],
        ['C003', 'Asthma'],
        ['C006', 'Unmapped local code'],
      ]);
      const [conceptMap] = medplum.allResources<ConceptMap>('ConceptMap');
      expect(conceptMap.group?.[0].element?.map((e) => [e.code, e.target?.[0].code])).toEqual([
        ['C001', 'I10'],
        ['C002', 'E11.9'],
        ['C003', 'J45.909'],
      ]);
    },
  },
  {
    file: 'patient-conditions-awkward.csv',
    setup: 'parents',
    table: 'patient_conditions',
    counts: { rows: 7, created: 2, failed: 5 },
    errors: [
      [
        3,
        'patient_id',
        'PC002',
        'patient_id P999 is not in Medplum (no Patient with identifier https://legacy-ehr.example.org/fhir/patient-id|P999); import it first',
      ],
      [4, 'condition_id', 'PC003', "condition_id 'C999' is not a known code: one of C001, C002, C003"],
      [5, 'onset_date', 'PC004', 'onset_date is not a real calendar date'],
      [7, 'patient_condition_id', 'PC001', 'duplicate patient_condition_id PC001: first seen at row 2'],
      [8, 'condition_id', 'PC006', 'condition_id is required'],
    ],
    landed: { Condition: ['PC001', 'PC005'] },
  },

  // ---------------------------------------------------------------- big values (built at test time)
  {
    // A 5 MB note cannot fit the 1 MB request with its encounter: that row fails, the others land.
    file: 'note-5mb.csv',
    generate: () =>
      [
        ENCOUNTERS,
        'E001,P001,2023-05-01,checkup,Short note',
        // 5.6 MB quoted, with commas, escaped quotes and line breaks.
        `E002,P002,2023-05-02,checkup,"${'Lorem ipsum, ""dolor"" sit amet.\n'.repeat(170_000)}"`,
        'E003,P002,2023-05-03,emergency,',
      ].join('\n'),
    setup: 'parents',
    table: 'encounters',
    counts: { rows: 3, created: 2, failed: 1 },
    errors: [[3, 'note', 'E002', 'note is longer than 500000 characters']],
    landed: { Encounter: ['E001', 'E003'], ClinicalImpression: ['E001'] },
  },
  {
    // Under the note length limit in characters, but 1.2 MB of JSON once encoded as UTF-8.
    file: 'note-too-big-to-send.csv',
    generate: () =>
      [ENCOUNTERS, `E001,P001,2023-05-01,checkup,${'\u75c5'.repeat(400_000)}`, 'E002,P002,2023-05-02,checkup,ok'].join('\n'),
    setup: 'parents',
    table: 'encounters',
    counts: { rows: 2, created: 1, failed: 1 },
    errors: [[2, undefined, 'E001', /^row too large to send: \d+ KB of JSON, over the 878 KB request limit$/]],
    landed: { Encounter: ['E002'], ClinicalImpression: ['E002'] },
  },
  {
    file: 'name-5mb.csv',
    generate: () => [PATIENTS, `P001,John,${'D'.repeat(5 * 1024 * 1024)},1980-07-15,M`, 'P002,Jane,Smith,1985-03-22,F'].join('\n'),
    table: 'patients',
    counts: { rows: 2, created: 1, failed: 1 },
    errors: [[2, 'last_name', 'P001', 'last_name is longer than 200 characters']],
    landed: { Patient: ['P002'] },
  },
  {
    // 2.6 MB of good rows, then one Latin-1 byte: the file is refused whole, naming the line,
    // although the bad byte is past the first chunks that csvFromFile reads.
    file: 'latin1-after-2mb.csv',
    generate: () => {
      const rows = Array.from({ length: 90_000 }, (_, i) => `P${String(i).padStart(6, '0')},John,Doe,1980-07-15,M`);
      const text = new TextEncoder().encode(`${PATIENTS}\n${rows.join('\n')}\nP999999,Jos`);
      return Buffer.concat([text, Buffer.from([0xe9]), Buffer.from(',Doe,1980-07-15,M\n')]);
    },
    error: WINDOWS_1252(90002),
    // Text has lost the bytes that tell the encoding.
    textError: NOT_UTF8(90002),
  },
];

// ------------------------------------------------------------------ helpers

/** The first sectors of an OLE compound file, as a legacy .xls starts: its header, then empty sectors. */
function legacyExcelBytes(): Uint8Array {
  const bytes = new Uint8Array(1536);
  bytes.set([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
  // Minor version 0x3E, major version 3, byte order FFFE, 512-byte sectors, 64-byte mini sectors.
  bytes.set([0x3e, 0x00, 0x03, 0x00, 0xfe, 0xff, 0x09, 0x00, 0x06, 0x00], 24);
  bytes.fill(0xff, 76, 512);
  return bytes;
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function fixtureText(file: string): string {
  return readFileSync(join(FIXTURES, file), 'utf8');
}

const generated = new Map<string, Uint8Array>();
let tmp: string;

/** The file's bytes, as they are on disk (generated files are written to a temporary folder). */
function bytesOf(c: Case): Uint8Array {
  if (!c.generate) {
    return readFileSync(join(FIXTURES, c.file));
  }
  let bytes = generated.get(c.file);
  if (!bytes) {
    const made = c.generate();
    bytes = typeof made === 'string' ? new TextEncoder().encode(made) : made;
    generated.set(c.file, bytes);
    writeFileSync(join(tmp, c.file), bytes);
  }
  return bytes;
}

function pathOf(c: Case): string {
  bytesOf(c);
  return join(c.generate ? tmp : FIXTURES, c.file);
}

async function prepareMedplum(setup: Setup = 'none'): Promise<LocalMedplum> {
  const medplum = createLocalMedplum();
  if (setup === 'parents') {
    await importCsv(medplum, csvFromText('patients.csv', guideCsv('patients.csv')));
    await importCsv(medplum, csvFromText('conditions.csv', guideCsv('conditions.csv')));
  }
  return medplum;
}

async function runBot(medplum: LocalMedplum, input: unknown, contentType = 'application/json'): Promise<ImportReport> {
  const { result } = await runBotInVm({ distPath, medplum, event: { input, contentType, secrets: NO_PARENT_WAIT } });
  // What the server sends back: JSON (and plain objects of this realm).
  return JSON.parse(JSON.stringify(result)) as ImportReport;
}

/** Rows whose parents are missing fail at once here: the corpus files are not dropped with their parents. */
const NO_PARENT_WAIT = { PARENT_WAIT_MINUTES: { name: 'PARENT_WAIT_MINUTES', valueString: '0' } };

/** An upload whose Task failed: the reason is the Task's. */
class UploadFailed extends Error {
  constructor(
    message: string,
    readonly task: Task
  ) {
    super(message);
  }
}

/**
 * Uploads the bytes as the Medplum app does and runs the bot on the upload's event: the upload's
 * report when its Task completed, UploadFailed with the Task's reason when it failed.
 */
async function importUpload(medplum: LocalMedplum, c: Case): Promise<() => Promise<ImportReport>> {
  const doc = await uploadCsv(medplum, c.file, bytesOf(c));
  return async () => {
    const result = (await runBot(medplum, doc, 'application/fhir+json')) as unknown as UploadJobResult;
    const [task] = importTasks(medplum);
    if (result.outcome === 'failed') {
      expect(task).toMatchObject({ status: 'failed', statusReason: { text: result.message } });
      throw new UploadFailed(result.message ?? '', task);
    }
    expect(result.outcome, result.message).toBe('completed');
    expect(task.status).toBe('completed');
    return result.report as ImportReport;
  };
}

/** Readies one import of the file by one path; the returned function runs it. */
async function prepareImport(path: Path, c: Case, medplum: LocalMedplum): Promise<() => Promise<ImportReport>> {
  const bytes = bytesOf(c);
  if (path === 'text') {
    const text = Buffer.from(bytes).toString('utf8');
    return async () => (await importCsv(medplum, csvFromText(c.file, text))).report;
  }
  if (path === 'file') {
    return async () => (await importCsv(medplum, await csvFromFile(pathOf(c)))).report;
  }
  return importUpload(medplum, c);
}

function byIdentifier<T extends Patient | Encounter | ClinicalImpression>(
  medplum: LocalMedplum,
  type: T['resourceType'],
  id: string
): T {
  const found = medplum.allResources<T>(type).filter((r) => r.identifier?.[0]?.value === id);
  expect(found, `${type} ${id}`).toHaveLength(1);
  return found[0];
}

const patient = (medplum: LocalMedplum, id: string): Patient => byIdentifier<Patient>(medplum, 'Patient', id);
const patientName = (medplum: LocalMedplum, id: string): unknown => patient(medplum, id).name?.[0];
const noteOf = (medplum: LocalMedplum, id: string): string | undefined =>
  byIdentifier<ClinicalImpression>(medplum, 'ClinicalImpression', id).summary;

function identifiers(medplum: LocalMedplum, type: 'Patient' | 'Encounter' | 'ClinicalImpression' | 'Condition'): string[] {
  return medplum
    .allResources(type)
    .map((r) => (r as { identifier?: { value?: string }[] }).identifier?.[0]?.value ?? '?')
    .sort();
}

/** No message may leak a JavaScript failure instead of naming the problem. */
function expectHelpful(message: string): void {
  expect(message).not.toMatch(/undefined|null|NaN|\[object |TypeError|RangeError|ReferenceError|SyntaxError|Cannot read/);
}

function expectErrors(report: ImportReport, expected: ErrorRow[]): void {
  expect(report.errors.map((e) => [e.row, e.column, e.sourceId])).toEqual(expected.map(([row, column, id]) => [row, column, id]));
  report.errors.forEach((error, i) => {
    const message = expected[i][3];
    if (typeof message === 'string') {
      expect(error.message).toBe(message);
    } else {
      expect(error.message).toMatch(message);
    }
    expectHelpful(error.message);
  });
}

// ------------------------------------------------------------------ the suite

beforeAll(() => {
  if (!existsSync(distPath)) {
    throw new Error(`${distPath} is missing: run "npm run build" first`);
  }
  tmp = mkdtempSync(join(tmpdir(), 'bad-input-'));
});

afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe('the corpus', () => {
  it('has at least 30 files, every fixture on disk has an asserted outcome, and the fixtures exist', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    const names = cases.map((c) => c.file);
    expect(new Set(names).size).toBe(names.length);
    const onDisk = readdirSync(FIXTURES).filter((f) => !f.startsWith('.') && f !== 'README.md');
    expect(onDisk.sort()).toEqual(cases.filter((c) => !c.generate).map((c) => c.file).sort());
  });
});

describe.each(cases)('$file', (c) => {
  it.each(PATHS)('via %s', async (path) => {
    const medplum = await prepareMedplum(c.setup);
    const run = await prepareImport(path, c, medplum);
    const before = identifiersByType(medplum);
    const versions = dataVersions(medplum);

    if ('error' in c) {
      const error = await run().then(
        () => undefined,
        (err: unknown) => err as Error
      );
      expect(error, 'a whole-file error').toBeDefined();
      const message = (error as Error).message;
      expect(message.startsWith(`${c.file}: `), message).toBe(true);
      const problem = message.slice(c.file.length + 2);
      if (path === 'bot') {
        // The upload's Task failed with the reason; the bytes were read as they are.
        expect(error).toBeInstanceOf(UploadFailed);
        expect(problem).toMatch(c.error);
      } else {
        expect(error).toBeInstanceOf(ImportFileError);
        expect((error as ImportFileError).problem).toMatch((path === 'text' && c.textError) || c.error);
      }
      expectHelpful(message);
      // Nothing written: no data resource version at all, and the same resources as before.
      expect(dataVersions(medplum)).toEqual(versions);
      expect(identifiersByType(medplum)).toEqual(before);
      return;
    }

    const report = await run();
    expect(report.file).toBe(c.file);
    expect(report.table).toBe(c.table);
    const counts = { rows: 0, created: 0, updated: 0, unchanged: 0, failed: 0, skipped: 0, ...c.counts };
    expect({
      rows: report.rows,
      created: report.created,
      updated: report.updated,
      unchanged: report.unchanged,
      failed: report.failed,
      skipped: report.skipped,
    }).toEqual(counts);
    expectErrors(report, c.errors ?? []);
    expect(report.skips.map((s) => [s.row, s.reason])).toEqual(c.skips ?? []);
    expect(report.warnings).toEqual(c.warnings ?? []);
    // The report stays small whatever the rows held (no cell values in it).
    expect(JSON.stringify(report).length).toBeLessThan(10_000);
    for (const [type, ids] of Object.entries(c.landed)) {
      expect(identifiers(medplum, type as keyof ReportCase['landed']), type).toEqual([...ids].sort());
    }
    await c.check?.(medplum);
  });
});

const DATA_TYPES = ['Patient', 'Encounter', 'ClinicalImpression', 'Condition', 'CodeSystem', 'ConceptMap'] as const;

function identifiersByType(medplum: LocalMedplum): Record<string, string[]> {
  const types = ['Patient', 'Encounter', 'ClinicalImpression', 'Condition'] as const;
  return Object.fromEntries(types.map((t) => [t, identifiers(medplum, t)]));
}

/** Every stored version of the imported types (an upload's own Task and files are not data). */
function dataVersions(medplum: LocalMedplum): string[] {
  return DATA_TYPES.flatMap((t) => medplum.allResources(t).map((r) => `${t}/${r.id}/${r.meta?.versionId}`)).sort();
}

describe('encoding through each way into the bot', () => {
  const latin1 = (): Uint8Array => readFileSync(join(FIXTURES, 'latin1.csv'));

  it('Latin-1 uploaded as a Binary and referenced directly: refused, naming the Binary and what the bytes look like', async () => {
    const medplum = createLocalMedplum();
    const binary = await medplum.createBinary({ data: latin1(), contentType: 'text/csv', filename: 'latin1.csv' });
    const writes = medplum.stats.writes;
    const refusal = new RegExp(`^ImportFileError: Binary/${binary.id}: ${WINDOWS_1252(2).source.slice(1)}`);
    await expect(runBot(medplum, { document: { reference: `Binary/${binary.id}` } })).rejects.toThrow(refusal);
    // A Binary handed to the bot as its input: same refusal.
    await expect(runBot(medplum, binary, 'application/fhir+json')).rejects.toThrow(refusal);
    expect(medplum.stats.writes).toBe(writes);
    expect(medplum.allResources('Patient')).toEqual([]);
  });

  it('Latin-1 sent as text/plain (the server decodes the body as UTF-8): refused by the text check', async () => {
    const medplum = createLocalMedplum();
    const text = Buffer.from(latin1()).toString('utf8');
    await expect(runBot(medplum, text, 'text/plain')).rejects.toThrow(
      /^ImportFileError: input\.csv: the file is not valid UTF-8 \(undecodable bytes on line 2\); re-export it as UTF-8$/
    );
    expect(medplum.stats.writes).toBe(0);
  });

  it('the same rows re-exported as UTF-8 import intact', async () => {
    const medplum = createLocalMedplum();
    const utf8 = new TextEncoder().encode(new TextDecoder('latin1').decode(latin1()));
    const doc = await uploadCsv(medplum, 'latin1-as-utf8.csv', utf8);
    const result = (await runBot(medplum, doc, 'application/fhir+json')) as unknown as UploadJobResult;
    expect(result).toMatchObject({ outcome: 'completed', report: { rows: 2, created: 2, failed: 0 } });
    expect(patientName(medplum, 'P001')).toEqual({ given: ['Jos\u00e9'], family: 'M\u00fcller' });
    expect(patientName(medplum, 'P002')).toEqual({ given: ['Fran\u00e7ois'], family: 'Lef\u00e8vre' });
  });
});

/**
 * Serves GET Binary/<id> of the client from an endless stream of 1 MB chunks, counting what the
 * reader pulls, so that a file over the limit need not be stored (with `declare`, the answer also
 * says how large it is).
 */
function serveEndlessBinary(medplum: LocalMedplum, binaryId: string, declare?: number): { pulled: () => number } {
  const client = medplum as unknown as { fetch: (url: string, init?: RequestInit) => Promise<Response> };
  const original = client.fetch;
  let pulled = 0;
  const chunk = new TextEncoder().encode(`${'P0000001,John,Doe,1980-07-15,M\n'.repeat(33_825)}`);
  client.fetch = async (url, init) => {
    if ((init?.method ?? 'GET') === 'GET' && url.endsWith(`/Binary/${binaryId}`)) {
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          pulled++;
          controller.enqueue(chunk);
        },
      });
      const headers: Record<string, string> = { 'content-type': 'text/csv' };
      if (declare !== undefined) {
        headers['content-length'] = String(declare);
      }
      return new Response(body, { status: 200, headers });
    }
    return original.call(medplum, url, init);
  };
  return { pulled: () => pulled };
}

describe('files over the bot size limit (MAX_CSV_BYTES) are refused before anything is parsed or written', () => {
  const row = 'P0000001,John,Doe,1980-07-15,M\n';
  const overLimit = (): string => PATIENTS + '\n' + row.repeat(Math.ceil((MAX_CSV_BYTES + 1024 * 1024) / row.length));

  it('as text/plain input', async () => {
    const medplum = createLocalMedplum();
    const attempt = runBot(medplum, overLimit(), 'text/plain');
    await expect(attempt).rejects.toThrow(/^BotInputError: input\.csv: the file is 51\.0 MB, over the 50\.0 MB \(52428800 bytes\) limit for one bot run; import it with the command line instead$/);
    expect(medplum.stats.writes).toBe(0);
  });

  it('as an upload: the download stops at the limit, and the Task fails naming the file', async () => {
    const medplum = createLocalMedplum();
    const doc = await uploadCsv(medplum, 'too-large.csv', new TextEncoder().encode(`${PATIENTS}\n`));
    const binaryId = /\/storage\/(?:Binary\/)?([A-Za-z0-9\-.]+)/.exec(doc.content[0].attachment.url as string)?.[1] as string;
    const served = serveEndlessBinary(medplum, binaryId);
    const result = (await runBot(medplum, doc, 'application/fhir+json')) as unknown as UploadJobResult;
    expect(result.outcome).toBe('failed');
    expect(result.message).toMatch(
      /^too-large\.csv: the file is larger than the 50\.0 MB \(52428800 bytes\) limit for one bot run \(the download was stopped there\); import it with the command line instead$/
    );
    expect(served.pulled()).toBeGreaterThanOrEqual(50);
    expect(served.pulled()).toBeLessThanOrEqual(53);
    expect(importTasks(medplum)[0]).toMatchObject({ status: 'failed', statusReason: { text: result.message } });
    expect(medplum.allResources('Patient')).toEqual([]);
  });

  it('as an upload whose answer declares its size: refused before a byte of it is read', async () => {
    const medplum = createLocalMedplum();
    const doc = await uploadCsv(medplum, 'declared.csv', new TextEncoder().encode(`${PATIENTS}\n`));
    const binaryId = /\/storage\/(?:Binary\/)?([A-Za-z0-9\-.]+)/.exec(doc.content[0].attachment.url as string)?.[1] as string;
    const served = serveEndlessBinary(medplum, binaryId, MAX_CSV_BYTES * 2);
    const result = (await runBot(medplum, doc, 'application/fhir+json')) as unknown as UploadJobResult;
    expect(result).toMatchObject({ outcome: 'failed', message: expect.stringMatching(/^declared\.csv: the file is 100\.0 MB, over the 50\.0 MB/) });
    expect(served.pulled()).toBeLessThanOrEqual(1);
  });

  it('one byte over is refused; exactly at the limit is accepted (its one oversized row fails alone)', async () => {
    const medplum = createLocalMedplum();
    await expect(runBot(medplum, 'x'.repeat(MAX_CSV_BYTES + 1), 'text/plain')).rejects.toThrow(
      /^BotInputError: input\.csv: the file is 50\.0 MB \(52428801 bytes\), over the 50\.0 MB \(52428800 bytes\) limit for one bot run; import it with the command line instead$/
    );
    const head = `${PATIENTS}\nP001,John,`;
    const tail = ',1980-07-15,M\nP002,Jane,Smith,1985-03-22,F\n';
    const atLimit = head + 'D'.repeat(MAX_CSV_BYTES - head.length - tail.length) + tail;
    expect(new TextEncoder().encode(atLimit).length).toBe(MAX_CSV_BYTES);
    const report = await runBot(medplum, atLimit, 'text/plain');
    expect(report).toMatchObject({ rows: 2, created: 1, failed: 1 });
    expect(report.errors).toEqual([
      { row: 2, column: 'last_name', sourceId: 'P001', message: 'last_name is longer than 200 characters' },
    ]);
    expect(identifiers(medplum, 'Patient')).toEqual(['P002']);
  });
});

// Problems found while building this corpus, now fixed in the engine.
describe('ids with URL-special characters and ids differing only in case', () => {
  it(
    "conditional references percent-encode source ids ('+', '&', '%'): encounters find patients imported with such ids",
    async () => {
      const medplum = createLocalMedplum();
      await importCsv(medplum, csvFromText('formula-like-values.csv', fixtureText('formula-like-values.csv')));
      await importCsv(medplum, csvFromText('more.csv', `${PATIENTS}\nP&1,A,B,,\nP%201,C,D,,\n`));
      const csv = [ENCOUNTERS, 'E1,+P2,2023-05-01,checkup,', 'E2,=1+2,2023-05-01,checkup,', 'E3,P&1,2023-05-01,checkup,', 'E4,P%201,2023-05-01,checkup,'];
      const { report } = await importCsv(medplum, csvFromText('encounters.csv', csv.join('\n')));
      expect(report.errors).toEqual([]);
      expect(report).toMatchObject({ rows: 4, created: 4 });
    }
  );

  it(
    'source ids differing only in case (Medplum matches identifier tokens case-insensitively) fail with a message that says so, not a server 400',
    async () => {
      const medplum = createLocalMedplum();
      const { report } = await importCsv(medplum, csvFromText('patients.csv', `${PATIENTS}\nP001,John,Doe,,\np001,Jim,Dole,,\n`));
      expect(report).toMatchObject({ rows: 2, created: 1, failed: 1 });
      expect(report.errors[0]).toMatchObject({ row: 3, column: 'patient_id', sourceId: 'p001' });
      expect(report.errors[0].message).toBe(
        'duplicate patient_id p001: first seen at row 2 spelled differently (ids that differ only in case are the same id to a FHIR server)'
      );
    }
  );
});
