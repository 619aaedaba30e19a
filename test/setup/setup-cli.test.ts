import type { WithId } from '@medplum/core';
import type { Bot, Project } from '@medplum/fhirtypes';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import type { StandInServer } from '../helpers/stand-in-server';
import { fakeAccessToken, readBody, startStandInServer } from '../helpers/stand-in-server';
import type { LocalMedplum } from '../../src/lib/local-medplum';
import { createLocalMedplum } from '../../src/lib/local-medplum';
import { main } from '../../src/setup/setup';

/**
 * `npm run setup` end to end over HTTP: the command logs in with the client credentials from the
 * environment, learns its project from `auth/me` (as with a real Medplum token), and sets the project
 * up. Behind the HTTP server is the local Medplum: FHIR and admin requests are forwarded to it, and
 * only the login endpoints are answered here.
 */

const CLIENT_ID = 'setup-test-client';
const CLIENT_SECRET = 'setup-test-secret';


const TOKEN = fakeAccessToken(CLIENT_ID);
let server: StandInServer;
let baseUrl: string;
let local: LocalMedplum;
let project: WithId<Project>;

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  const path = (req.url ?? '/').slice(1);
  const json = (status: number, value: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  if (path === 'oauth2/token') {
    const form = new URLSearchParams(body.toString('utf8'));
    const ok = form.get('client_id') === CLIENT_ID && form.get('client_secret') === CLIENT_SECRET;
    // Like the server's token response: the token plus references to the project and the client.
    const tokens = {
      token_type: 'Bearer',
      access_token: TOKEN,
      expires_in: 3600,
      project: { reference: `Project/${project.id}` },
      profile: { reference: `ClientApplication/${CLIENT_ID}` },
    };
    json(ok ? 200 : 400, ok ? tokens : { error: 'invalid_client' });
    return;
  }
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    json(401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
    return;
  }
  if (path === 'auth/me') {
    json(200, {
      profile: { resourceType: 'ClientApplication', id: CLIENT_ID },
      project,
      membership: { resourceType: 'ProjectMembership', id: 'admin-membership', admin: true },
    });
    return;
  }
  const response = await local.client.mockFetch(local.getBaseUrl() + path, {
    method: req.method,
    headers: { 'content-type': req.headers['content-type'] ?? '', accept: req.headers.accept ?? '*/*' },
    body: body.length ? body.toString('utf8') : undefined,
  });
  res.writeHead(response.status, { 'content-type': response.headers.get('content-type') ?? 'application/json' });
  res.end(Buffer.from(await response.arrayBuffer()));
}

beforeAll(async () => {
  server = await startStandInServer(handle);
  baseUrl = server.url;
});

afterAll(() => server.close());

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('npm run setup', () => {
  test('logs in from the environment, sets up the project of the client, writes the Bot id into the config; a second run keeps everything', async () => {
    local = createLocalMedplum();
    project = await local.createResource<Project>({ resourceType: 'Project', name: 'CSV migration', features: ['bots', 'cron'] });
    vi.stubEnv('MEDPLUM_BASE_URL', baseUrl);
    vi.stubEnv('MEDPLUM_CLIENT_ID', CLIENT_ID);
    vi.stubEnv('MEDPLUM_CLIENT_SECRET', CLIENT_SECRET);
    vi.stubEnv('IDENTIFIER_BASE', 'https://ehr.example.org/fhir');
    const dir = mkdtempSync(join(tmpdir(), 'setup-cli-'));
    const config = join(dir, 'medplum.config.json');
    writeFileSync(config, JSON.stringify({ bots: [{ name: 'import-csv', id: '', source: 'src/bots/import-csv.ts', dist: 'dist/import-csv.js' }] }, null, 2) + '\n');
    try {
      const out: string[] = [];
      expect(await main(['--config', config], (line) => out.push(line))).toBe(0);

      const [bot] = local.allResources<Bot>('Bot');
      expect(bot).toMatchObject({ name: 'import-csv', cronString: '*/5 * * * *', timeout: 60 });
      expect(JSON.parse(readFileSync(config, 'utf8')).bots[0].id).toBe(bot.id);
      expect(out[0]).toBe(`Setting up Bot 'import-csv' in Medplum at ${baseUrl}`);
      expect(out).toContain(`  wrote   Bot id ${bot.id} for 'import-csv' into ${config}`);
      expect(out.at(-1)).toMatch(/^Done: 4 created, 2 updated, 1 kept, 1 warning\(s\) above\. .*Next: npm run deploy$/);
      expect(out.some((l) => l.includes("'transaction-bundles' feature"))).toBe(true);
      expect((await local.readResource('Project', project.id)).secret?.map((s) => s.name)).toEqual(['IDENTIFIER_BASE', 'TIME_BUDGET_SECONDS']);

      const writes = local.stats.writes;
      const again: string[] = [];
      expect(await main(['--config', config], (line) => again.push(line))).toBe(0);
      expect(local.stats.writes).toBe(writes);
      expect(again.at(-1)).toMatch(/^Done: 0 created, 0 updated, 6 kept/);
      expect(again.some((l) => l.includes('wrote'))).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('prints the server without the key a MEDPLUM_BASE_URL carries in its query string', async () => {
    local = createLocalMedplum();
    project = await local.createResource<Project>({ resourceType: 'Project', name: 'CSV migration', features: ['bots', 'cron'] });
    // MedplumClient resolves every path against the base URL, which drops its query: the setup works.
    vi.stubEnv('MEDPLUM_BASE_URL', `${baseUrl}?access_key=s3cret-key`);
    vi.stubEnv('MEDPLUM_CLIENT_ID', CLIENT_ID);
    vi.stubEnv('MEDPLUM_CLIENT_SECRET', CLIENT_SECRET);
    const out: string[] = [];
    expect(await main(['--no-write-config'], (line) => out.push(line))).toBe(0);
    expect(out[0]).toBe(`Setting up Bot 'import-csv' in Medplum at ${baseUrl}?***`);
    expect(out.join('\n')).not.toContain('s3cret-key');
  });
});
