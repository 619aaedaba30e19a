import type { Attachment, DocumentReference, Task } from '@medplum/fhirtypes';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import type { ImportReport } from '../../src/lib';
import type { UploadJobResult } from '../../src/lib/jobs/upload-job';
import type { VmClock } from './vm-runner';
import { runBotInVm } from './vm-runner';
import { BOT_DIST } from './uploads';

/** Runs the built bot once on an event, as Medplum does; the result comes back as JSON would. */
export async function botRun(
  medplum: LocalMedplum,
  input: unknown,
  options: { secrets?: Record<string, string>; clock?: VmClock; contentType?: string; bot?: string; timeoutMs?: number } = {}
): Promise<{ result: unknown; logs: string[] }> {
  const { result, logs } = await runBotInVm({
    distPath: BOT_DIST,
    medplum,
    clock: options.clock,
    timeoutMs: options.timeoutMs,
    event: {
      input,
      contentType: options.contentType ?? 'application/fhir+json',
      bot: { reference: options.bot ?? 'Bot/import-csv' },
      secrets: Object.fromEntries(Object.entries(options.secrets ?? {}).map(([name, valueString]) => [name, { name, valueString }])),
    },
  });
  return { result: JSON.parse(JSON.stringify(result ?? null)) as unknown, logs };
}

/** A DocumentReference with the given attachments, as an app or a script would create it. */
export async function documentWith(medplum: LocalMedplum, attachments: Attachment[], status: DocumentReference['status'] = 'current'): Promise<DocumentReference> {
  return medplum.createResource<DocumentReference>({
    resourceType: 'DocumentReference',
    status,
    content: attachments.map((attachment) => ({ attachment })),
  });
}

/** A Binary holding the text, and an attachment pointing at it the way the app stores it. */
export async function binaryAttachment(
  medplum: LocalMedplum,
  text: string | Uint8Array,
  fields: Omit<Attachment, 'url'> = {}
): Promise<Attachment> {
  const attachment = await medplum.createAttachment({ data: text, contentType: fields.contentType ?? 'text/csv', filename: fields.title });
  return { ...attachment, ...fields, url: attachment.url };
}

export function jobResult(result: unknown): UploadJobResult {
  return result as UploadJobResult;
}

export function taskReportOf(task: Task): ImportReport | undefined {
  const text = task.output?.find((o) => o.type.text === 'report')?.valueString;
  return text ? (JSON.parse(text) as ImportReport) : undefined;
}

type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

/**
 * Puts a hook in front of the local server, where a gateway or the network would be: the hook may
 * answer instead of the server, or pass the request on. Install it before the bot first runs on
 * this client: the bot wraps the client's fetch once, and must see what the hook answers.
 */
export function interceptServer(
  medplum: LocalMedplum,
  hook: (url: string, init: RequestInit | undefined, next: (changed?: RequestInit) => Promise<Response>) => Promise<Response>
): void {
  const client = medplum as unknown as { fetch: FetchLike };
  const original = client.fetch;
  client.fetch = (url, init) => hook(url, init, (changed) => original.call(medplum, url, changed ?? init));
}
