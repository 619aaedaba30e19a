import { sleep } from '@medplum/core';

/**
 * Time as the importer sees it. Every wait goes through `sleep` and every deadline is compared with
 * `now`, so tests and the bot's simulated runs can replace both (the vm runner swaps the sandbox's
 * Date and @medplum/core's sleep; the engine takes a Clock directly).
 */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => sleep(ms),
};

/** No deadline: waits are bounded only by the retry policy. */
export const NO_DEADLINE = Number.POSITIVE_INFINITY;

/**
 * When work must stop (ms since epoch). A function is read again at every check: an invocation's
 * deadline for work moves earlier as slow answers show how long its last save will take.
 */
export type Deadline = number | (() => number);

export function deadlineAt(deadline: Deadline): number {
  return typeof deadline === 'function' ? deadline() : deadline;
}
