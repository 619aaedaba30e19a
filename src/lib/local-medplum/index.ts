/**
 * An in-memory Medplum that behaves like the real server (validation, conditional references,
 * atomic transactions, paging, Binary bytes, the FHIR quota, body limits, bot $execute and injected
 * faults). See docs/local-medplum.md.
 */
export { createLocalMedplum, LocalMedplum } from './client';
export type { LocalBinarySource, LocalCreateBinaryOptions, LocalMedplumOptions, LocalMedplumStats } from './client';
export type { BotExecuteHandler, BotInvocation } from './bots';
export type { LocalClock } from './clock';
export type { FaultOptions } from './faults';
export { SERIALIZATION_FAILURE_MESSAGE } from './faults';
export { MAX_ASYNC_BATCH_BODY_BYTES, MAX_JSON_BODY_BYTES, MAX_TEXT_BODY_BYTES } from './body-parsers';
export { FHIR_QUOTA_COSTS, FHIR_QUOTA_WINDOW_MS } from './quota';
export type { FhirInteraction } from './quota';
export { LocalRepository } from './repository';
export type { ServerTimeOptions } from './server';
