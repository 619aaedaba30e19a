import { badRequest, ContentType, createReference, getReferenceString, getStatus, normalizeOperationOutcome } from '@medplum/core';
import type { AccessPolicy, Binary, Bot, ProjectMembership, Reference } from '@medplum/fhirtypes';
import { bodyText, fhirResponse, outcomeResponse } from './http';
import type { LocalRepository } from './repository';

/**
 * The project-admin endpoints the setup step needs, as the server's packages/server/src/admin
 * routes answer them. Only `POST admin/projects/{projectId}/bot` is emulated: it creates the Bot
 * (with a placeholder TypeScript source Binary, like the server) and the Bot's ProjectMembership,
 * carrying the optional `accessPolicy`. Everything else under `admin/` is 404, as before.
 *
 * Not emulated: the project-admin check (every caller is treated as an admin), and `meta.project`
 * (the local repository does not keep it).
 */
export async function handleAdminRequest(
  repo: LocalRepository,
  method: string,
  pathname: string,
  body: BodyInit | null | undefined
): Promise<Response> {
  const createBot = /^admin\/projects\/([^/]+)\/bot\/?$/.exec(pathname);
  if (createBot && method === 'POST') {
    return createBotResponse(repo, decodeURIComponent(createBot[1]), body);
  }
  return outcomeResponse(404, badRequest(`Not emulated by LocalMedplum: ${method} ${pathname}`));
}

interface CreateBotBody {
  name?: unknown;
  description?: unknown;
  accessPolicy?: Reference<AccessPolicy>;
  runtimeVersion?: Bot['runtimeVersion'];
}

const DEFAULT_BOT_SOURCE = `import { BotEvent, MedplumClient } from '@medplum/core';

export async function handler(medplum: MedplumClient, event: BotEvent): Promise<any> {
  // Your code here
}
`;

async function createBotResponse(repo: LocalRepository, projectId: string, body: BodyInit | null | undefined): Promise<Response> {
  let request: CreateBotBody;
  try {
    request = JSON.parse((await bodyText(body)) || '{}') as CreateBotBody;
  } catch {
    return outcomeResponse(400, badRequest('Invalid JSON body'));
  }
  if (typeof request.name !== 'string' || !request.name) {
    return outcomeResponse(400, badRequest('Bot name is required'));
  }
  try {
    const source = await repo.createResource<Binary>({
      resourceType: 'Binary',
      contentType: ContentType.TYPESCRIPT,
      data: Buffer.from(DEFAULT_BOT_SOURCE, 'utf8').toString('base64'),
    });
    const bot = await repo.createResource<Bot>({
      resourceType: 'Bot',
      name: request.name,
      description: typeof request.description === 'string' ? request.description : undefined,
      runtimeVersion: request.runtimeVersion ?? 'awslambda',
      sourceCode: { contentType: ContentType.TYPESCRIPT, title: 'index.ts', url: getReferenceString(source) },
    });
    await repo.createResource<ProjectMembership>({
      resourceType: 'ProjectMembership',
      project: { reference: `Project/${projectId}` },
      user: createReference(bot),
      profile: createReference(bot),
      accessPolicy: request.accessPolicy,
    });
    return fhirResponse(201, bot);
  } catch (err) {
    const outcome = normalizeOperationOutcome(err);
    return outcomeResponse(getStatus(outcome), outcome);
  }
}
