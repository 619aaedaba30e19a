import { SingleBar } from 'cli-progress';
import type { ImportProgress } from '../lib';

/** Where progress goes: a terminal gets a bar (it must then be a real stream), anything else lines. */
export type ProgressStream = Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean };

export interface ProgressDisplay {
  update(progress: ImportProgress): void;
  stop(): void;
}

/** A progress bar (rows, rows/s, ETA) on a terminal; plain progress lines otherwise (CI, logs). */
export function createProgressDisplay(stream: ProgressStream = process.stderr): ProgressDisplay {
  return stream.isTTY ? new BarDisplay(stream as NodeJS.WriteStream) : new LineDisplay(stream);
}

class BarDisplay implements ProgressDisplay {
  private bar: SingleBar | undefined;
  private file = '';

  constructor(private readonly stream: NodeJS.WriteStream) {}

  update(p: ImportProgress): void {
    if (!this.bar || this.file !== p.file) {
      this.bar?.stop();
      this.file = p.file;
      this.bar = new SingleBar({
        stream: this.stream,
        format: `${p.file} [{bar}] {value}/{total} rows | {speed} rows/s | ETA {eta_formatted}`,
        etaBuffer: 50,
        hideCursor: true,
      });
      this.bar.start(p.rowsTotal, 0, { speed: '0' });
      this.started = Date.now();
    }
    const seconds = (Date.now() - this.started) / 1000;
    this.bar.update(p.rowsDone, { speed: seconds > 0 ? Math.round(p.rowsDone / seconds).toString() : '0' });
  }

  private started = Date.now();

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

class LineDisplay implements ProgressDisplay {
  private file = '';
  private started = 0;
  private lastPrinted = 0;

  constructor(private readonly stream: ProgressStream) {}

  update(p: ImportProgress): void {
    const now = Date.now();
    if (this.file !== p.file) {
      this.file = p.file;
      this.started = now;
      this.lastPrinted = 0;
    }
    const finished = p.rowsDone >= p.rowsTotal;
    if (!finished && now - this.lastPrinted < 2000) {
      return;
    }
    this.lastPrinted = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = p.rowsDone / seconds;
    const eta = rate > 0 ? Math.round((p.rowsTotal - p.rowsDone) / rate) : 0;
    const percent = p.rowsTotal ? Math.floor((100 * p.rowsDone) / p.rowsTotal) : 100;
    this.stream.write(
      `${p.file}: ${p.rowsDone}/${p.rowsTotal} rows (${percent}%), ${Math.round(rate)} rows/s, ETA ${eta} s\n`
    );
  }

  stop(): void {
    // Lines need no cleanup.
  }
}
