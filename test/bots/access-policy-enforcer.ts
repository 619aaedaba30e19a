// The local Medplum does not enforce AccessPolicies. This puts a check in front of it, where the
// server's own would be: while enabled, every FHIR request (batch and transaction entries one by
// one, conditional references in bodies as the searches the server makes for them) is judged with
// the function Medplum's server uses (@medplum/core `satisfiedAccessPolicy`, from
// Repository.canPerformInteraction), and a request the policy does not allow is answered 403,
// as the server would. What was refused, and every (type, interaction) seen, are recorded.
import type { AccessPolicyInteraction } from '@medplum/core';
import { accessPolicySupportsInteraction, satisfiedAccessPolicy } from '@medplum/core';
import type { AccessPolicy, Bundle, Resource, ResourceType } from '@medplum/fhirtypes';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { interceptServer } from '../helpers/bot-events';

export interface PolicyEnforcer {
  /** Requests are judged only while this is true (the test's own requests are not). */
  enabled: boolean;
  /** The policy judged by (set it once setup has written it). */
  policy: AccessPolicy;
  /** `Type interaction: what` of each refused request. */
  denied: string[];
  /** `Type:interaction` of every judged request. */
  seen: Set<string>;
}

interface Access {
  type: string;
  interaction: AccessPolicyInteraction;
  resource?: Resource;
  what: string;
}

/**
 * Install it on a fresh client, before anything wraps the client's fetch: the importer's server link
 * (made once per client, by setup's downloads as by the bot) must send its requests through it.
 */
export function enforceAccessPolicy(medplum: LocalMedplum, policy: AccessPolicy = { resourceType: 'AccessPolicy', resource: [] }): PolicyEnforcer {
  const enforcer: PolicyEnforcer = { enabled: false, policy, denied: [], seen: new Set() };
  const fhirBase = medplum.fhirUrl().toString().replace(/\/?$/, '/');
  interceptServer(medplum, async (url, init, next) => {
    if (!enforcer.enabled || !url.startsWith(fhirBase)) {
      // Presigned storage URLs are served by the server's system repository: no policy applies.
      return next();
    }
    const method = (init?.method ?? 'GET').toUpperCase();
    const path = url.slice(fhirBase.length);
    const headers = new Headers(init?.headers);
    let body: unknown;
    if (init?.body && /json/i.test(headers.get('content-type') ?? '')) {
      body = JSON.parse(await new Response(init.body).text());
    }
    const accesses = accessesOf(method, path, body, headers);
    const refused = accesses.filter((a) => !allowed(enforcer.policy, a));
    for (const access of accesses) {
      enforcer.seen.add(`${access.type}:${access.interaction}`);
    }
    if (refused.length) {
      enforcer.denied.push(...refused.map((a) => `${a.type} ${a.interaction}: ${a.what}`));
      return forbidden();
    }
    const response = await next();
    // A read is judged on what it read (criteria are matched against the stored resource).
    if (method === 'GET' && response.ok && /^[A-Z][A-Za-z]+\/[^/?$]+$/.test(path) && !path.startsWith('Binary/')) {
      const resource = (await response.clone().json()) as Resource;
      if (!satisfiedAccessPolicy(resource, 'read', enforcer.policy)) {
        enforcer.denied.push(`${resource.resourceType} read: ${path}`);
        return forbidden();
      }
    }
    return response;
  });
  return enforcer;
}

function allowed(policy: AccessPolicy, access: Access): boolean {
  if (access.resource) {
    return Boolean(satisfiedAccessPolicy(access.resource, access.interaction, policy));
  }
  return accessPolicySupportsInteraction(policy, access.interaction, access.type as ResourceType);
}

function forbidden(): Response {
  return new Response(
    JSON.stringify({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'forbidden', details: { text: 'Forbidden' } }] }),
    { status: 403, headers: { 'content-type': 'application/fhir+json' } }
  );
}

/** What one request (or batch entry) does, as the server's access checks see it. */
function accessesOf(method: string, path: string, body: unknown, headers?: Headers): Access[] {
  const [pathname, query] = path.split('?');
  const parts = pathname.split('/').filter(Boolean);
  const what = `${method} ${pathname}${query ? '?...' : ''}`;
  if (parts.length === 0) {
    // A batch or transaction: each entry on its own.
    const bundle = body as Bundle | undefined;
    return (bundle?.entry ?? []).flatMap((entry) =>
      entry.request ? accessesOf(entry.request.method, entry.request.url.replace(/^\//, ''), entry.resource) : []
    );
  }
  const type = parts[0];
  const resource = body && typeof body === 'object' && (body as Resource).resourceType === type ? (body as Resource) : undefined;
  const references = resource ? conditionalReferences(resource) : [];
  if (parts[1] === '$execute' || parts[2] === '$execute') {
    // $execute reads the Bot as the caller; with respond-async it creates the AsyncJob as the caller.
    const async = headers?.get('prefer') === 'respond-async';
    return [
      { type: 'Bot', interaction: 'read', what },
      ...(async ? [{ type: 'AsyncJob', interaction: 'create' as const, resource: { resourceType: 'AsyncJob' } as Resource, what }] : []),
    ];
  }
  if (parts[1] === '_search') {
    return [{ type, interaction: 'search', what }];
  }
  switch (method) {
    case 'GET':
      if (parts.length === 1) {
        return [{ type, interaction: 'search', what }];
      }
      return [{ type, interaction: parts.length > 2 ? (parts[2] === '_history' && parts[3] ? 'vread' : 'history') : 'read', what }];
    case 'POST': {
      const created = resource ?? ({ resourceType: type } as Resource);
      const ifNoneExist = headers?.get('if-none-exist') ? [{ type, interaction: 'search' as const, what }] : [];
      return [...ifNoneExist, { type, interaction: 'create', resource: created, what }, ...references];
    }
    case 'PUT': {
      const written = resource ?? ({ resourceType: type } as Resource);
      // An update reads the stored version first; a conditional one searches, then updates or creates.
      const conditional = query ? [{ type, interaction: 'search' as const, what }, { type, interaction: 'create' as const, resource: written, what }] : [];
      return [...conditional, { type, interaction: 'read', what }, { type, interaction: 'update', resource: written, what }, ...references];
    }
    case 'PATCH':
      return [{ type, interaction: 'read', what }, { type, interaction: 'update', what }];
    case 'DELETE':
      return [{ type, interaction: 'delete', what }];
    default:
      return [{ type, interaction: 'read', what }];
  }
}

/** `Type?identifier=...` references in a body: the server searches Type to resolve each. */
function conditionalReferences(resource: Resource): Access[] {
  const found: Access[] = [];
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) {
      value.forEach(walk);
    } else if (value && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        if (key === 'reference' && typeof child === 'string' && /^[A-Z][A-Za-z]+\?/.test(child)) {
          found.push({ type: child.split('?')[0], interaction: 'search', what: `resolving ${child.split('?')[0]}?...` });
        } else {
          walk(child);
        }
      }
    }
  };
  walk(resource);
  return found;
}
