// Runs a built bot bundle the way Medplum's server runs it with the vmcontext runtime
// (packages/server/src/bots/vmcontext.ts): the bundle text is pasted into a script that is run
// by vm.runInNewContext in a fresh context holding only the server's sandbox globals, and that
// script awaits exports.handler(medplum, event). Anything a bot needs beyond those globals
// (Buffer, process, setTimeout, atob, structuredClone, ...) must come from require().
import { ContentType, Hl7Message, MedplumClient, normalizeErrorString } from '@medplum/core';
import type { BotEvent } from '@medplum/core';
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import vm from 'node:vm';

/** The server's default vm timeout (Bot.timeout unset): 10 s, bounding synchronous code only. */
export const DEFAULT_VM_TIMEOUT_MS = 10_000;

/** Rooted at the project so the bot's require('@medplum/core') etc. resolve from our node_modules. */
const botRequire = createRequire(new URL('../../package.json', import.meta.url));

export type RunBotInVmOptions = ({ code: string; distPath?: never } | { distPath: string; code?: never }) & {
  /** Client handed to the handler (the server builds one from the bot's access token instead). */
  medplum: MedplumClient;
  /** Only `input` is required; the other BotEvent fields get server-like defaults. */
  event: Partial<BotEvent> & { input: unknown };
  /** vm timeout in ms (server: Bot.timeout * 1000, default 10 s); bounds synchronous code only. */
  timeoutMs?: number;
  /**
   * Simulated time for the bot (e.g. test/helpers/clock.ts): the sandbox's `Date.now()` and `new Date()`
   * read it, and `sleep` from @medplum/core and `setTimeout` from node:timers/promises wait on it.
   * Without it the bot sees real time, as before.
   */
  clock?: VmClock;
};

/** What the runner needs of a clock. */
export interface VmClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface BotRunResult {
  /** What the handler resolved to, as the vm realm produced it (not JSON round-tripped). */
  result: unknown;
  /** Captured console output, one entry per call, formatted like the server's MockConsole. */
  logs: string[];
  /** Whether `exports.handler` was a function when the wrapper called it. */
  handlerFound: boolean;
}

/** Thrown when the bot fails; keeps the logs and whether the handler was reached. */
export class BotRunError extends Error {
  readonly logs: string[];
  readonly handlerFound: boolean;

  constructor(botError: unknown, logs: string[], handlerFound: boolean) {
    super(describeError(botError), { cause: botError });
    this.name = 'BotRunError';
    this.logs = logs;
    this.handlerFound = handlerFound;
  }
}

/** Errors from the vm have the vm realm's Error prototype, so read name/message by shape. */
function describeError(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'message' in err && typeof err.message === 'string') {
    const name = 'name' in err && typeof err.name === 'string' ? err.name : 'Error';
    return `${name}: ${err.message}`;
  }
  return normalizeErrorString(err);
}

/** Same behaviour as the server's MockConsole: every output method appends params.join(' '). */
class BotConsole {
  private readonly counts = new Map<string, number>();
  private readonly timers = new Map<string, number>();
  constructor(readonly messages: string[]) {}

  log(...params: unknown[]): void {
    this.messages.push(params.join(' '));
  }
  info = this.log;
  warn = this.log;
  error = this.log;
  debug = this.log;
  trace = this.log;
  dir = this.log;
  table = this.log;
  dirxml = this.log;
  group = this.log;
  groupCollapsed = this.log;
  groupEnd(): void {}
  clear(): void {}
  assert(condition: unknown, ...params: unknown[]): void {
    if (!condition) this.log('Assertion failed:', ...params);
  }
  count(label = 'default'): void {
    const n = (this.counts.get(label) ?? 0) + 1;
    this.counts.set(label, n);
    this.log(`${label}: ${n}`);
  }
  countReset(label = 'default'): void {
    this.counts.delete(label);
  }
  time(label = 'default'): void {
    this.timers.set(label, Date.now());
  }
  timeEnd(label = 'default'): void {
    this.timeLog(label);
    this.timers.delete(label);
  }
  timeLog(label = 'default', ...params: unknown[]): void {
    const start = this.timers.get(label);
    if (start !== undefined) this.log(`${label}: ${Date.now() - start}ms`, ...params);
  }
}

/** The server's wrapper, except that the client comes from `event.medplum` and the script's
 * value also says whether exports.handler existed (so callers can tell "no handler" apart
 * from "handler threw"). */
function wrap(code: string): string {
  return `
  const exports = {};
  const module = {exports};

  // Start user code
  ${code}
  // End user code

  (() => {
    const handlerFound = typeof exports.handler === 'function';
    const promise = (async () => {
      const { medplum, bot, requester, contentType, secrets, traceId, headers } = event;
      try {
        let input = event.input;
        if (contentType === ContentType.HL7_V2 && input) {
          input = Hl7Message.parse(input);
        }
        let result = await exports.handler(medplum, { bot, requester, input, contentType, secrets, traceId, headers });
        if (contentType === ContentType.HL7_V2 && result) {
          result = result.toString();
        }
        return result;
      } catch (err) {
        if (err instanceof Error) {
          console.log("Unhandled error: " + err.message + "\\n" + err.stack);
        } else if (typeof err === "object") {
          console.log("Unhandled error: " + JSON.stringify(err, undefined, 2));
        } else {
          console.log("Unhandled error: " + err);
        }
        throw err;
      }
    })();
    return { handlerFound, promise };
  })();
  `;
}

/**
 * Runs a CommonJS bot bundle (text or dist/ path) like the vmcontext runtime.
 * Resolves with the handler's result and the captured logs; rejects with BotRunError
 * (cause = the original error, e.g. ReferenceError, SyntaxError, vm timeout).
 */
export async function runBotInVm(options: RunBotInVmOptions): Promise<BotRunResult> {
  const code = options.code ?? (await readFile(options.distPath as string, 'utf8'));
  const { input, ...event } = options.event;
  const logs: string[] = [];
  const botConsole = new BotConsole(logs);

  // Exactly the server's sandbox globals; the event (with the client, where the server keeps
  // baseUrl/accessToken) is a global too. No Buffer, process, timers, atob/btoa,
  // structuredClone, AbortController or Blob: the server does not provide them.
  const sandbox = {
    console: botConsole,
    fetch: globalThis.fetch,
    require: options.clock ? clockedRequire(options.clock) : botRequire,
    // Shadows the context's own Date only when simulated time is asked for.
    ...(options.clock ? { Date: clockedDate(options.clock) } : {}),
    ContentType,
    Hl7Message,
    MedplumClient,
    TextDecoder,
    TextEncoder,
    TextDecoderStream,
    TextEncoderStream,
    ReadableStream,
    WritableStream,
    TransformStream,
    URL,
    URLSearchParams,
    Headers,
    Request,
    Response,
    event: {
      medplum: options.medplum,
      bot: event.bot ?? { reference: 'Bot/vm-runner' },
      requester: event.requester,
      input: input instanceof Hl7Message ? input.toString() : input,
      contentType: event.contentType ?? ContentType.JSON,
      secrets: event.secrets ?? {},
      traceId: event.traceId ?? randomUUID(),
      headers: event.headers,
    },
  };

  let handlerFound = false;
  try {
    // The timeout covers the bundle's top level and the handler up to its first await, as on the server.
    const run = vm.runInNewContext(wrap(code), sandbox, {
      timeout: options.timeoutMs ?? DEFAULT_VM_TIMEOUT_MS,
    }) as { handlerFound: boolean; promise: Promise<unknown> };
    handlerFound = run.handlerFound;
    return { result: await run.promise, logs, handlerFound };
  } catch (err) {
    botConsole.log('Error', normalizeErrorString(err));
    throw new BotRunError(err, logs, handlerFound);
  }
}

/**
 * A Date that reads the clock when it is asked for "now" (`Date.now()`, `new Date()`, `Date()`) and is
 * the host's Date otherwise, so `new Date(x)`, `Date.parse`, `Date.UTC` and `instanceof Date` behave.
 */
function clockedDate(clock: VmClock): DateConstructor {
  return new Proxy(Date, {
    construct: (target, args, newTarget) => Reflect.construct(target, args.length ? args : [clock.now()], newTarget),
    apply: () => new Date(clock.now()).toString(),
    get: (target, property, receiver) => (property === 'now' ? () => clock.now() : Reflect.get(target, property, receiver)),
  });
}

/** The sandbox `require`, with the two ways a bot can wait (core's `sleep`, timers/promises) put on the clock. */
function clockedRequire(clock: VmClock): NodeJS.Require {
  const core = { ...(botRequire('@medplum/core') as Record<string, unknown>), sleep: clockedSleep(clock) };
  const timers = {
    ...(botRequire('node:timers/promises') as Record<string, unknown>),
    setTimeout: clockedSetTimeout(clock),
  };
  const modules: Record<string, unknown> = {
    '@medplum/core': core,
    'node:timers/promises': timers,
    'timers/promises': timers,
  };
  const sandboxRequire = (id: string): unknown => (Object.hasOwn(modules, id) ? modules[id] : botRequire(id));
  return Object.assign(sandboxRequire, {
    resolve: botRequire.resolve,
    cache: botRequire.cache,
    extensions: botRequire.extensions,
    main: botRequire.main,
  }) as NodeJS.Require;
}

/** Core's `sleep(ms, options?)`: resolves after `ms` on the clock, rejects with the signal's reason on abort. */
function clockedSleep(clock: VmClock): (ms: number, options?: { signal?: AbortSignal }) => Promise<void> {
  return (ms, options) => waitOnClock(clock, ms, options?.signal, () => options?.signal?.reason);
}

/** timers/promises `setTimeout(delay, value, { signal })`: resolves `value`; rejects with an AbortError. */
function clockedSetTimeout(
  clock: VmClock
): <T = void>(delay?: number, value?: T, options?: { signal?: AbortSignal }) => Promise<T> {
  return async <T>(delay = 1, value?: T, options?: { signal?: AbortSignal }): Promise<T> => {
    const abortError = (): Error =>
      Object.assign(new Error('The operation was aborted', { cause: options?.signal?.reason }), {
        name: 'AbortError',
        code: 'ABORT_ERR',
      });
    await waitOnClock(clock, delay, options?.signal, abortError);
    return value as T;
  };
}

function waitOnClock(clock: VmClock, ms: number, signal: AbortSignal | undefined, abortReason: () => unknown): Promise<void> {
  if (signal?.aborted) {
    return Promise.reject(abortReason());
  }
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(abortReason());
    signal?.addEventListener('abort', onAbort, { once: true });
    clock.sleep(ms).then(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      (err: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        reject(err);
      }
    );
  });
}
