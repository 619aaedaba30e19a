import type { Bot, ProjectSetting } from '@medplum/fhirtypes';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import type { FakeClock } from './clock';
import { BOT_DIST } from './uploads';
import { runBotInVm } from './vm-runner';

/** One bot invocation in a simulated schedule. */
export interface Invocation {
  kind: 'event' | 'cron' | 'continuation';
  start: number;
  end: number;
  result: unknown;
  logs: string[];
}

export interface ScheduleOptions {
  medplum: LocalMedplum;
  clock: FakeClock;
  bot: Bot & { id: string };
  /** Minutes between cron ticks. */
  cronMinutes: number;
  secrets?: Record<string, string>;
  /** Delay before Medplum starts a run asked for with `$execute` + `Prefer: respond-async`. */
  continuationDelayMs?: number;
  /** Gives up after this many invocations. */
  maxInvocations?: number;
}

/**
 * Runs the built bot as Medplum would over simulated time: an optional first event (a
 * Subscription's), then whatever comes first of a queued `$execute` (a run continuing itself) and
 * the next cron tick, until `done()` says so. Runs are sequential: a cron tick that falls inside
 * a run is skipped (that run holds the claim; the tick's run would find the job busy).
 */
export async function runSchedule(
  options: ScheduleOptions,
  first: { input: unknown } | undefined,
  done: () => boolean
): Promise<Invocation[]> {
  const { medplum, clock, bot } = options;
  const secrets: Record<string, ProjectSetting> = Object.fromEntries(
    Object.entries(options.secrets ?? {}).map(([name, valueString]) => [name, { name, valueString }])
  );
  const cronMs = options.cronMinutes * 60_000;
  const invocations: Invocation[] = [];
  const run = async (kind: Invocation['kind'], input: unknown): Promise<void> => {
    const start = clock.now();
    const { result, logs } = await runBotInVm({
      distPath: BOT_DIST,
      medplum,
      clock,
      timeoutMs: (bot.timeout ?? 10) * 1000,
      event: { input, bot: { reference: `Bot/${bot.id}` }, contentType: 'application/fhir+json', secrets },
    });
    invocations.push({ kind, start, end: clock.now(), result, logs });
  };

  let nextTick = Math.ceil(clock.now() / cronMs) * cronMs;
  if (first) {
    await run('event', first.input);
  }
  while (!done() && invocations.length < (options.maxInvocations ?? 2000)) {
    const [queued] = medplum.takeBotInvocations();
    if (queued) {
      clock.advance(options.continuationDelayMs ?? 1000);
      await run('continuation', queued.input);
      continue;
    }
    while (nextTick <= clock.now()) {
      nextTick += cronMs;
    }
    clock.advance(nextTick - clock.now());
    await run('cron', bot);
  }
  return invocations;
}
