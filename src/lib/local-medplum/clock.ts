/**
 * The local server's sense of time: the quota window, simulated latency and server time, `lastUpdated`
 * stamps and presigned URL expiry all read it. Tests pass a fake clock whose `sleep` advances time at
 * once, so that minutes of quota waiting or seconds of simulated server work cost no real time.
 */
export interface LocalClock {
  /** Epoch milliseconds. */
  now(): number;
  /** Resolves once `ms` milliseconds have passed on this clock. */
  sleep(ms: number): Promise<void>;
}

/** Wall-clock time and real timers. */
export const SYSTEM_CLOCK: LocalClock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};
