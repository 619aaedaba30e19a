/**
 * An in-memory Medplum that behaves like the real server (validation, conditional references,
 * atomic transactions, paging, Binary bytes, rate limits and injected faults). See docs/local-medplum.md.
 */
export { createLocalMedplum, LocalMedplum } from './client';
export type { LocalBinarySource, LocalCreateBinaryOptions, LocalMedplumOptions, LocalMedplumStats } from './client';
export type { FaultOptions } from './faults';
export { LocalRepository } from './repository';
