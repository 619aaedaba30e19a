import type { WithId } from '@medplum/core';
import {
  accepted,
  allOk,
  badRequest,
  getStatus,
  normalizeErrorString,
  normalizeOperationOutcome,
  notFound,
  Operator,
} from '@medplum/core';
import type { AsyncJob, Bot } from '@medplum/fhirtypes';
import type { RequestBody } from './http';
import { fhirResponse, jsonResponse, outcomeResponse } from './http';
import { formFields, isFormBody, isJsonBody, isTextBody } from './body-parsers';
import type { LocalRepository } from './repository';

/** One call of a bot, as the server would hand it to the bot's runtime. */
export interface BotInvocation {
  readonly botId: string;
  /**
   * What the server gives the bot as `event.input`: the parsed body for JSON and FHIR JSON, the text for
   * `text/plain` (and HL7 v2), the fields of a form body, the query of a GET, and `{}` for anything
   * else (`text/csv`, `application/octet-stream`: the server has no parser for them).
   */
  readonly input: unknown;
  /** The request's `Content-Type` header as sent ('' when none), which the server passes on as is. */
  readonly contentType: string;
  /** The AsyncJob created for a `Prefer: respond-async` call (its status stays `accepted`). */
  readonly asyncJobId?: string;
}

/** Runs a synchronous `$execute`; its resolved value is the response body. */
export type BotExecuteHandler = (invocation: BotInvocation) => Promise<unknown>;

/** A response, or work to run outside the server's request queue that produces it. */
export type HandlerResult = Response | (() => Promise<Response>);

/** The parts of a `$execute` request the handler needs. */
export interface BotExecuteRequest {
  readonly method: string;
  /** The full request URL, recorded in the AsyncJob. */
  readonly url: string;
  readonly botId: string | undefined;
  readonly query: URLSearchParams;
  readonly headers: Headers;
  readonly body: RequestBody;
  readonly baseUrl: string;
  readonly now: number;
}

/**
 * `Bot/<id>/$execute` and `Bot/$execute?identifier=...` as the server's operations/execute.ts answers them,
 * without running any bot code: synchronous calls go to the handler registered with `onBotExecute`,
 * asynchronous ones (`Prefer: respond-async`) are queued for the test to run (`take`).
 */
export class BotExecutions {
  private readonly queued: BotInvocation[] = [];
  private handler: BotExecuteHandler | undefined;

  onExecute(handler: BotExecuteHandler | undefined): void {
    this.handler = handler;
  }

  /** The queued asynchronous invocations, oldest first; the queue is emptied. */
  take(): BotInvocation[] {
    return this.queued.splice(0, this.queued.length);
  }

  async execute(repo: LocalRepository, request: BotExecuteRequest): Promise<HandlerResult> {
    const input = botInput(request);
    if (input instanceof Response) {
      return input;
    }
    const contentType = request.headers.get('content-type') ?? '';
    try {
      if (request.headers.get('prefer') === 'respond-async') {
        return await this.executeAsync(repo, request, input, contentType);
      }
      const handler = this.handler;
      if (!handler) {
        return outcomeResponse(404, notFound);
      }
      const bot = await findBot(repo, request);
      if (!bot) {
        return outcomeResponse(400, badRequest('Must specify bot ID or identifier.'));
      }
      const invocation: BotInvocation = { botId: bot.id, input, contentType };
      // The bot runs outside the request queue: its own requests to this server must not wait for it.
      return async () => {
        let result: unknown;
        try {
          result = await handler(invocation);
        } catch (err) {
          return outcomeResponse(400, badRequest(normalizeErrorString(err)));
        }
        return result === undefined ? fhirResponse(200, allOk) : jsonResponse(200, result);
      };
    } catch (err) {
      const outcome = normalizeOperationOutcome(err);
      return outcomeResponse(getStatus(outcome), outcome);
    }
  }

  /**
   * The server creates the AsyncJob with the caller's repository (a charged write), answers 202 with its
   * status URL, and looks the bot up inside the job: a missing bot fails the job, not the request.
   */
  private async executeAsync(
    repo: LocalRepository,
    request: BotExecuteRequest,
    input: unknown,
    contentType: string
  ): Promise<Response> {
    const job = await repo.createResource<AsyncJob>({
      resourceType: 'AsyncJob',
      status: 'accepted',
      request: request.url,
      requestTime: new Date(request.now).toISOString(),
    });
    const location = `${request.baseUrl}fhir/R4/job/${job.id}/status`;
    try {
      const bot = await findBot(repo, request);
      if (!bot) {
        throw new Error('Must specify bot ID or identifier.');
      }
      this.queued.push({ botId: bot.id, input, contentType, asyncJobId: job.id });
    } catch (err) {
      await failJob(repo, job, err, request.now);
    }
    return outcomeResponse(202, accepted(location), { 'content-location': location });
  }
}

/** `GET fhir/R4/job/<id>/status`: 202 while the job runs, 200 once it is completed, failed or cancelled. */
export async function asyncJobStatus(repo: LocalRepository, id: string, baseUrl: string): Promise<Response> {
  try {
    const job = await repo.readResource<AsyncJob>('AsyncJob', id);
    if (['completed', 'error', 'cancelled'].includes(job.status)) {
      return fhirResponse(200, job);
    }
    const location = `${baseUrl}fhir/R4/job/${job.id}/status`;
    return fhirResponse(202, job, { 'content-location': location });
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    return outcomeResponse(getStatus(outcome), outcome);
  }
}

/** By id: a charged read (404/410/403 as for any read). By identifier: a charged search. */
async function findBot(repo: LocalRepository, request: BotExecuteRequest): Promise<WithId<Bot> | undefined> {
  if (request.botId) {
    return repo.readResource<Bot>('Bot', request.botId);
  }
  const identifier = request.query.get('identifier');
  if (!identifier) {
    return undefined;
  }
  return repo.searchOne<Bot>({
    resourceType: 'Bot',
    filters: [{ code: 'identifier', operator: Operator.EXACT, value: identifier }],
  });
}

/** The server's job bookkeeping runs as the system user: not charged. */
async function failJob(repo: LocalRepository, job: WithId<AsyncJob>, err: unknown, now: number): Promise<void> {
  const outcome = err instanceof Error && !('outcome' in err) ? badRequest(err.message) : normalizeOperationOutcome(err);
  await repo.asSystem(() =>
    repo.updateResource<AsyncJob>({
      ...job,
      status: 'error',
      transactionTime: new Date(now).toISOString(),
      output: { resourceType: 'Parameters', parameter: [{ name: 'outcome', resource: outcome }] },
    })
  );
}

/** The input the server's body parsers produce (see BotInvocation.input), or the 400 for a bad body. */
function botInput(request: BotExecuteRequest): unknown {
  if (request.method === 'GET') {
    return formFields(request.query);
  }
  const contentType = request.headers.get('content-type');
  if (isJsonBody(contentType)) {
    if (request.body.empty) {
      return {};
    }
    try {
      return JSON.parse(request.body.text());
    } catch {
      return outcomeResponse(400, badRequest('Content could not be parsed'));
    }
  }
  if (isTextBody(contentType)) {
    return request.body.text();
  }
  if (isFormBody(contentType)) {
    return formFields(new URLSearchParams(request.body.text()));
  }
  return {};
}
