/**
 * Problems found in a mapping set. Loading checks everything before any row is read and reports
 * every problem at once, each naming the file and the place in it (a JSON pointer).
 */
export interface MappingProblem {
  file: string;
  /** JSON pointer into the file ('' for the file as a whole), e.g. `/resources/0/elements/birthDate`. */
  at: string;
  message: string;
}

export class MappingSetError extends Error {
  constructor(readonly problems: readonly MappingProblem[]) {
    super(
      `the mappings have ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  ${describeProblem(p)}`).join('\n')
    );
    this.name = 'MappingSetError';
  }
}

export function describeProblem(p: MappingProblem): string {
  return `${p.file}${p.at ? ` ${p.at}` : ''}: ${p.message}`;
}

/** Collects the problems of one file; `at` builds JSON pointers. */
export class FileProblems {
  constructor(
    readonly file: string,
    private readonly sink: MappingProblem[]
  ) {}

  add(at: string, message: string): void {
    this.sink.push({ file: this.file, at, message });
    this.added++;
  }

  /** How many problems this file has had so far. */
  count(): number {
    return this.added;
  }

  private added = 0;
}

/** A JSON pointer below `base` (member names escaped as RFC 6901 says). */
export function pointer(base: string, ...parts: (string | number)[]): string {
  return base + parts.map((p) => `/${String(p).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}
