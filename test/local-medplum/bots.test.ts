import { ContentType } from '@medplum/core';
import type { AsyncJob, Bot, OperationOutcome } from '@medplum/fhirtypes';
import { describe, expect, test } from 'vitest';
import type { BotInvocation } from '../../src/lib/local-medplum';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { createFakeClock } from '../helpers/clock';
import { costOf, outcomeStatus, primeRateLimit, rawFetch, rejection } from './helpers';

const ASYNC = { headers: { Prefer: 'respond-async' } };
const MISSING_BOT = '00000000-0000-4000-8000-000000000000';

async function setup(): Promise<{ medplum: ReturnType<typeof createLocalMedplum>; bot: Bot & { id: string } }> {
  const medplum = createLocalMedplum({ maxRetries: 0, fhirQuota: 1_000_000, clock: createFakeClock() });
  const bot = await medplum.createResource<Bot>({
    resourceType: 'Bot',
    name: 'import-csv',
    identifier: [{ system: 'https://example.org/bots', value: 'import' }],
  });
  return { medplum, bot };
}

describe('Bot $execute with Prefer: respond-async', () => {
  test('202 with the AsyncJob status URL; the invocation is queued with the input the server gives bots', async () => {
    const { medplum, bot } = await setup();
    const calls: [unknown, string][] = [
      [{ file: 'patients.csv' }, ContentType.JSON],
      [{ resourceType: 'Parameters' }, ContentType.FHIR_JSON],
      ['patient_id\nP1\n', ContentType.TEXT],
      ['patient_id\nP1\n', 'text/csv'],
      [new Uint8Array([1, 2, 3]), 'application/octet-stream'],
    ];
    for (const [input, contentType] of calls) {
      const outcome = (await medplum.executeBot(bot.id, input, contentType, ASYNC)) as OperationOutcome;
      expect(outcome.id).toBe('accepted');
      expect(outcome.issue[0].diagnostics).toMatch(/^https:\/\/example\.com\/fhir\/R4\/job\/[0-9a-f-]+\/status$/);
    }
    const invocations = medplum.takeBotInvocations();
    expect(invocations.map((i: BotInvocation) => [i.botId, i.input, i.contentType])).toEqual([
      [bot.id, { file: 'patients.csv' }, ContentType.JSON],
      [bot.id, { resourceType: 'Parameters' }, ContentType.FHIR_JSON],
      [bot.id, 'patient_id\nP1\n', ContentType.TEXT],
      [bot.id, {}, 'text/csv'],
      [bot.id, {}, 'application/octet-stream'],
    ]);
    expect(medplum.takeBotInvocations()).toEqual([]);

    const job = await medplum.readResource('AsyncJob', invocations[0].asyncJobId as string);
    expect(job).toMatchObject({ status: 'accepted', request: medplum.fhirUrl('Bot', bot.id, '$execute').toString() });
    expect(job.requestTime).toBe('2026-01-01T00:00:00.000Z');
  });

  test('the raw response: 202, Content-Location, RateLimit; costs the AsyncJob write and the Bot read', async () => {
    const { medplum, bot } = await setup();
    await primeRateLimit(medplum);
    const before = medplum.rateLimitStatus()[0].remainingUnits;
    const response = await medplum.client.mockFetch(medplum.fhirUrl('Bot', bot.id, '$execute').toString(), {
      method: 'POST',
      headers: { 'content-type': ContentType.JSON, prefer: 'respond-async' },
      body: '{"a":1}',
    });
    expect(response.status).toBe(202);
    // 100 for the AsyncJob (created with the caller's repository), 1 for reading the Bot.
    expect(response.headers.get('ratelimit')).toBe(`"fhirInteractions";r=${before - 101};t=60`);
    const location = response.headers.get('content-location') as string;
    expect((await response.json()).issue[0].diagnostics).toBe(location);

    // Polling the job: 202 while it runs, 200 once the test marks it done.
    const jobId = medplum.takeBotInvocations()[0].asyncJobId as string;
    expect(location).toBe(`https://example.com/fhir/R4/job/${jobId}/status`);
    expect((await medplum.client.mockFetch(location, {})).status).toBe(202);
    await medplum.updateResource<AsyncJob>({ ...(await medplum.readResource('AsyncJob', jobId)), status: 'completed' });
    const done = await medplum.client.mockFetch(location, {});
    expect(done.status).toBe(200);
    expect((await done.json()).status).toBe('completed');
  });

  test('a missing bot still answers 202; the job fails and nothing is queued', async () => {
    const { medplum } = await setup();
    const outcome = (await medplum.executeBot(MISSING_BOT, {}, ContentType.JSON, ASYNC)) as OperationOutcome;
    const status = await medplum.get(outcome.issue[0].diagnostics as string);
    expect(status).toMatchObject({ resourceType: 'AsyncJob', status: 'error' });
    expect(medplum.takeBotInvocations()).toEqual([]);
  });

  test('by identifier (Bot/$execute?identifier=...)', async () => {
    const { medplum, bot } = await setup();
    await medplum.executeBot({ system: 'https://example.org/bots', value: 'import' }, { x: 1 }, ContentType.JSON, ASYNC);
    expect(medplum.takeBotInvocations()).toMatchObject([{ botId: bot.id, input: { x: 1 } }]);
  });
});

describe('Bot $execute without respond-async', () => {
  test('calls the handler registered with onBotExecute and answers 200 with its result as JSON', async () => {
    const { medplum, bot } = await setup();
    const seen: BotInvocation[] = [];
    medplum.onBotExecute(async (invocation) => {
      seen.push(invocation);
      // The handler may use the same server while the $execute is in flight.
      const patients = await medplum.searchResources('Patient');
      return { imported: 2, before: patients.length };
    });
    expect(await medplum.executeBot(bot.id, 'a,b\n', ContentType.TEXT)).toEqual({ imported: 2, before: 0 });
    expect(seen).toEqual([{ botId: bot.id, input: 'a,b\n', contentType: ContentType.TEXT }]);
    expect(medplum.takeBotInvocations()).toEqual([]);

    medplum.onBotExecute(async () => undefined);
    expect(await medplum.executeBot(bot.id, {}, ContentType.JSON)).toMatchObject({ resourceType: 'OperationOutcome', id: 'ok' });
    medplum.onBotExecute(async () => {
      throw new Error('bad input');
    });
    const err = await rejection(medplum.executeBot(bot.id, {}, ContentType.JSON));
    expect(outcomeStatus(err)).toBe(400);
    expect(err.message).toContain('bad input');
  });

  test('404 without a handler or for a missing bot; a text body over 100 KB is refused', async () => {
    const { medplum, bot } = await setup();
    expect(outcomeStatus(await rejection(medplum.executeBot(bot.id, {}, ContentType.JSON)))).toBe(404);
    medplum.onBotExecute(async () => 'ran');
    expect(outcomeStatus(await rejection(medplum.executeBot(MISSING_BOT, {}, ContentType.JSON)))).toBe(404);
    const tooLarge = await rejection(medplum.executeBot(bot.id, 'x'.repeat(102_401), ContentType.TEXT));
    expect(outcomeStatus(tooLarge)).toBe(400);
    expect(tooLarge.message).toBe('File too large');
    expect(await medplum.executeBot(bot.id, 'x'.repeat(102_400), ContentType.TEXT)).toBe('ran');
  });

  test('charges a read of the Bot', async () => {
    const { medplum, bot } = await setup();
    medplum.onBotExecute(async () => ({ ok: true }));
    await primeRateLimit(medplum);
    expect(await costOf(medplum, () => medplum.executeBot(bot.id, {}, ContentType.JSON))).toBe(1);
    const response = await rawFetch(medplum, 'POST', `fhir/R4/Bot/${bot.id}/$execute`, {});
    expect(response.headers.get('ratelimit')).not.toBeNull();
  });

  test('GET passes the query as input; an unknown identifier is 400 as on the server', async () => {
    const { medplum, bot } = await setup();
    medplum.onBotExecute(async (invocation) => invocation.input);
    const url = medplum.fhirUrl('Bot', bot.id, '$execute');
    url.searchParams.append('file', 'a.csv');
    url.searchParams.append('tag', 'x');
    url.searchParams.append('tag', 'y');
    expect(await medplum.get(url)).toEqual({ file: 'a.csv', tag: ['x', 'y'] });

    const err = await rejection(medplum.executeBot({ system: 'https://example.org/bots', value: 'nope' }, {}, ContentType.JSON));
    expect(outcomeStatus(err)).toBe(400);
    expect(err.message).toBe('Must specify bot ID or identifier.');
  });
});
