// Tests of the vmcontext-faithful runner itself, using small fixture bots built with the
// project's exact bot build options.
import { MockClient } from '@medplum/mock';
import type { Basic } from '@medplum/fhirtypes';
import esbuild from 'esbuild';
import type { BuildOptions } from 'esbuild';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { botBuildOptions } from '../../esbuild-script.mjs';
import { createFakeClock } from '../helpers/clock';
import { BotRunError, runBotInVm } from '../helpers/vm-runner';

const fixtureDir = fileURLToPath(new URL('../fixtures/bots/', import.meta.url));
let outDir: string;

/** Builds a fixture with the project's bot options (optionally altered) and returns the dist path. */
async function build(name: string, tweak: (o: BuildOptions) => BuildOptions = (o) => o): Promise<string> {
  const dist = join(outDir, `${name}-${Math.random().toString(36).slice(2)}.js`);
  await esbuild.build(tweak(botBuildOptions(join(fixtureDir, `${name}.ts`), dist)));
  return dist;
}

/** Runs and expects failure; returns the BotRunError. */
async function runExpectingError(options: Parameters<typeof runBotInVm>[0]): Promise<BotRunError> {
  const err = await runBotInVm(options).then(
    () => undefined,
    (e: unknown) => e
  );
  expect(err).toBeInstanceOf(BotRunError);
  return err as BotRunError;
}

/** Cross-realm errors fail instanceof checks, so compare by name. */
function causeName(err: BotRunError): string | undefined {
  return (err.cause as { name?: string } | undefined)?.name;
}

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'vm-runner-'));
});

afterAll(async () => {
  await rm(outDir, { recursive: true, force: true });
});

describe('runBotInVm', () => {
  it('calls exports.handler with the server event fields and captures console output', async () => {
    const medplum = new MockClient();
    const dist = await build('echo');
    const { result, logs, handlerFound } = await runBotInVm({
      distPath: dist,
      medplum,
      event: { input: { hello: 'world' }, secrets: { KEY: { name: 'KEY', valueString: 'v' } } },
    });

    expect(handlerFound).toBe(true);
    const r = result as Record<string, unknown>;
    expect(r.eventKeys).toEqual(['bot', 'contentType', 'headers', 'input', 'requester', 'secrets', 'traceId']);
    expect(r.input).toEqual({ hello: 'world' });
    expect(r.bot).toEqual({ reference: 'Bot/vm-runner' });
    expect(r.contentType).toBe('application/json');
    expect(r.secrets).toEqual({ KEY: { name: 'KEY', valueString: 'v' } });
    expect(typeof r.traceId).toBe('string');
    expect(logs).toEqual(['echo: input is object', 'echo: error channel']);

    // The handler really used the client we passed in.
    const created = await medplum.readResource('Basic', r.createdId as string);
    expect((created as Basic).code?.text).toBe('vm-runner-echo');
  });

  it('accepts the bundle as text and defaults secrets to {}', async () => {
    const code = await readFile(await build('echo'), 'utf8');
    const { result } = await runBotInVm({ code, medplum: new MockClient(), event: { input: 'text' } });
    expect((result as Record<string, unknown>).secrets).toEqual({});
    expect((result as Record<string, unknown>).input).toBe('text');
  });

  it('exposes only the server sandbox globals', async () => {
    const { result } = await runBotInVm({ distPath: await build('probe-globals'), medplum: new MockClient(), event: { input: {} } });
    const provided = ['console', 'require', 'URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'ReadableStream'];
    const providedFns = [...provided, 'fetch', 'WritableStream', 'TransformStream', 'Headers', 'Request', 'Response'];
    const absent = ['Buffer', 'process', 'setTimeout', 'setInterval', 'atob', 'btoa', 'structuredClone', 'medplum'];
    const types = result as Record<string, string>;
    for (const name of providedFns) expect(types[name], name).not.toBe('undefined');
    for (const name of absent) expect(types[name], name).toBe('undefined');
    expect(types.requiredBuffer).toBe('function');
  });

  it('fails with ReferenceError when a bot touches the Buffer global', async () => {
    const err = await runExpectingError({ distPath: await build('uses-buffer'), medplum: new MockClient(), event: { input: {} } });
    expect(causeName(err)).toBe('ReferenceError');
    expect(err.message).toBe('ReferenceError: Buffer is not defined');
    expect(err.handlerFound).toBe(true);
    // Same log lines the server records.
    expect(err.logs[0]).toMatch(/^Unhandled error: Buffer is not defined\n/);
    expect(err.logs.at(-1)).toBe('Error Buffer is not defined');
  });

  it('fails like the server on an ESM bundle (syntax error before any handler call)', async () => {
    const dist = await build('echo', (o) => ({ ...o, format: 'esm' }));
    const err = await runExpectingError({ distPath: dist, medplum: new MockClient(), event: { input: {} } });
    expect(causeName(err)).toBe('SyntaxError');
    expect(err.handlerFound).toBe(false);
  });

  it('fails with "exports.handler is not a function" without the footer, which is why the build adds it', async () => {
    const dist = await build('echo', (o) => ({ ...o, footer: undefined }));
    const err = await runExpectingError({ distPath: dist, medplum: new MockClient(), event: { input: {} } });
    expect(causeName(err)).toBe('TypeError');
    expect(err.message).toBe('TypeError: exports.handler is not a function');
    expect(err.handlerFound).toBe(false);
  });

  it('stops synchronous code at the vm timeout', async () => {
    const dist = await build('spin');
    const err = await runExpectingError({ distPath: dist, medplum: new MockClient(), event: { input: { mode: 'sync-forever' } }, timeoutMs: 200 });
    expect(err.message).toMatch(/Script execution timed out after 200ms/);
  });

  it('does not bound asynchronous waiting with the vm timeout (like the server)', async () => {
    const dist = await build('spin');
    const { result } = await runBotInVm({ distPath: dist, medplum: new MockClient(), event: { input: { mode: 'async-wait', ms: 300 } }, timeoutMs: 100 });
    expect(result).toBe('waited');
  });

  it('with a clock: Date.now(), new Date(), core sleep and timers/promises setTimeout use it', async () => {
    const clock = createFakeClock(Date.parse('2026-05-01T00:00:00Z'));
    const start = clock.now();
    const aborted = new AbortController();
    aborted.abort(new Error('stop'));
    const before = performance.now();
    const { result } = await runBotInVm({
      distPath: await build('clock'),
      medplum: new MockClient(),
      event: { input: { sleepMs: 60_000, waitMs: 30_000, aborted: aborted.signal } },
      clock,
    });
    expect(performance.now() - before).toBeLessThan(5_000);
    expect(result).toEqual({
      start,
      constructed: start,
      afterSleep: start + 60_000,
      afterWait: start + 90_000,
      value: 'waited',
      abortReason: 'stop',
      epoch: '1970-01-01T00:00:00.000Z',
      parsed: Date.parse('2000-01-01T00:00:00Z'),
      isDate: true,
      called: 'string',
    });
    expect(clock.now()).toBe(start + 90_000);
  });

  it('without a clock the bot sees real time', async () => {
    const before = Date.now();
    const { result } = await runBotInVm({
      distPath: await build('clock'),
      medplum: new MockClient(),
      event: { input: { sleepMs: 30, waitMs: 30 } },
    });
    const r = result as Record<string, number>;
    expect(r.start).toBeGreaterThanOrEqual(before);
    expect(r.afterSleep - r.start).toBeGreaterThanOrEqual(25);
    expect(r.afterWait - r.afterSleep).toBeGreaterThanOrEqual(25);
    expect(r.afterWait).toBeLessThanOrEqual(Date.now());
  });
});
