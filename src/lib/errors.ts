/**
 * Errors about a file as a whole. They are thrown before anything is written, and their
 * messages name the file and the problem (column, row) but never a cell value.
 */
export class ImportFileError extends Error {
  constructor(
    readonly file: string,
    readonly problem: string
  ) {
    super(`${file}: ${problem}`);
    this.name = 'ImportFileError';
  }
}

/**
 * The file depends on data that has not been imported yet (e.g. patient_conditions before the
 * condition catalog). A scheduled run waits and retries later instead of failing the rows.
 */
export class DependencyNotReadyError extends ImportFileError {
  constructor(
    file: string,
    problem: string,
    readonly missingTable: string
  ) {
    super(file, problem);
    this.name = 'DependencyNotReadyError';
  }
}
