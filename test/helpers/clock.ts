/**
 * A fake clock for sequential simulations: `sleep` advances the time by the amount asked and resolves at
 * once, so minutes of quota waits or seconds of simulated server time cost no real time. Pass it to
 * `createLocalMedplum({ clock })`, `runBotInVm({ clock })` or an executor's `sleep`.
 *
 * Concurrent sleepers do not wait for each other: each one advances the shared time by its own amount
 * as it starts. That is exact for one caller at a time, which is what the simulations here do.
 */
export interface FakeClock {
  /** The current fake time in epoch milliseconds. */
  now(): number;
  /** Advances the time by `ms` (negative values are ignored) and resolves. */
  sleep(ms: number): Promise<void>;
  /** Advances the time by `ms` without waiting. */
  advance(ms: number): void;
}

/** Starts at `startMs` (default 2026-01-01T00:00:00Z). */
export function createFakeClock(startMs = Date.parse('2026-01-01T00:00:00Z')): FakeClock {
  let time = startMs;
  const advance = (ms: number): void => {
    if (ms > 0) {
      time += ms;
    }
  };
  return {
    now: () => time,
    advance,
    sleep: async (ms) => {
      advance(ms);
    },
  };
}
