import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import type { StandInServer } from '../helpers/stand-in-server';
import { fakeAccessToken, readBody, startStandInServer } from '../helpers/stand-in-server';
import { deployBots } from '../../src/setup/deploy';

/**
 * `npm run deploy` end to end against a stand-in for the Medplum server's HTTP API: our deploy step
 * and the real @medplum/cli (run as a child process, as npm run deploy runs it) talk to it over HTTP.
 * It answers only the requests a bot deploy makes, and records them, so the test can check how the
 * CLI authenticates (client credentials from the environment) and what it uploads.
 */

const CLIENT_ID = 'deploy-test-client';
const CLIENT_SECRET = 'deploy-test-secret';
const BOT_ID = 'bot-1';
const PROJECT = { resourceType: 'Project', id: 'project-1', name: 'CSV migration' };

interface Recorded {
  method: string;
  path: string;
  authorization?: string;
  contentType?: string;
  body: string;
}


const TOKEN = fakeAccessToken(CLIENT_ID);

let server: StandInServer;
let baseUrl: string;
let requests: Recorded[] = [];
let bot: Record<string, unknown>;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/fhir+json' });
  res.end(JSON.stringify(body));
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = await readBody(req);
  const url = new URL(req.url ?? '/', baseUrl);
  const record: Recorded = {
    method: req.method ?? 'GET',
    path: url.pathname + url.search,
    authorization: req.headers.authorization,
    contentType: req.headers['content-type'],
    body: body.toString('utf8'),
  };
  requests.push(record);
  const route = `${record.method} ${url.pathname}`;

  if (route === 'POST /oauth2/token') {
    const form = new URLSearchParams(record.body);
    const basic = req.headers.authorization?.startsWith('Basic ')
      ? Buffer.from(req.headers.authorization.slice(6), 'base64').toString('utf8')
      : undefined;
    const credentials = basic ?? `${form.get('client_id')}:${form.get('client_secret')}`;
    if (form.get('grant_type') !== 'client_credentials' || credentials !== `${CLIENT_ID}:${CLIENT_SECRET}`) {
      send(res, 400, { error: 'invalid_client', error_description: 'Invalid client' });
      return;
    }
    send(res, 200, {
      token_type: 'Bearer',
      access_token: TOKEN,
      expires_in: 3600,
      scope: 'openid',
      project: { reference: `Project/${PROJECT.id}` },
      profile: { reference: `ClientApplication/${CLIENT_ID}` },
    });
    return;
  }
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    send(res, 401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login', details: { text: 'Unauthorized' } }] });
    return;
  }
  if (route === 'GET /auth/me') {
    send(res, 200, {
      profile: { resourceType: 'ClientApplication', id: CLIENT_ID },
      project: PROJECT,
      membership: { resourceType: 'ProjectMembership', id: 'm-1', project: { reference: `Project/${PROJECT.id}` } },
    });
    return;
  }
  if (route === 'GET /fhir/R4/Bot') {
    const entry = url.searchParams.get('name') === 'import-csv' ? [{ resource: bot }] : [];
    send(res, 200, { resourceType: 'Bundle', type: 'searchset', entry });
    return;
  }
  if (route === `GET /fhir/R4/Bot/${BOT_ID}`) {
    send(res, 200, bot);
    return;
  }
  if (route === 'POST /fhir/R4/Binary') {
    send(res, 201, { resourceType: 'Binary', id: 'source-1', contentType: record.contentType, url: `${baseUrl}storage/source-1` });
    return;
  }
  if (route === `PUT /fhir/R4/Bot/${BOT_ID}`) {
    bot = { ...JSON.parse(record.body), meta: { versionId: '2' } };
    send(res, 200, bot);
    return;
  }
  if (route === `POST /fhir/R4/Bot/${BOT_ID}/$deploy`) {
    send(res, 200, { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', details: { text: 'Deployed' } }] });
    return;
  }
  send(res, 404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', details: { text: `no route ${route}` } }] });
}

beforeAll(async () => {
  server = await startStandInServer(handle);
  baseUrl = server.url;
});

afterAll(() => server.close());

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('npm run deploy', () => {
  test('builds, finds the Bot id by name, writes it into medplum.config.json, and the CLI logs in from the environment and deploys', async () => {
    requests = [];
    bot = { resourceType: 'Bot', id: BOT_ID, name: 'import-csv', meta: { versionId: '1' } };
    const root = mkdtempSync(join(tmpdir(), 'deploy-test-'));
    const home = mkdtempSync(join(tmpdir(), 'deploy-home-'));
    try {
      const source = join(__dirname, '..', '..', 'src', 'bots', 'import-csv.ts');
      writeFileSync(
        join(root, 'medplum.config.json'),
        JSON.stringify({ bots: [{ name: 'import-csv', id: '', source, dist: 'dist/import-csv.js' }] }, null, 2) + '\n'
      );
      vi.stubEnv('MEDPLUM_BASE_URL', baseUrl);
      vi.stubEnv('MEDPLUM_CLIENT_ID', CLIENT_ID);
      vi.stubEnv('MEDPLUM_CLIENT_SECRET', CLIENT_SECRET);
      const lines: string[] = [];

      // HOME points at an empty directory: no saved CLI profile, and the CLI's token cache stays out of the real home.
      const deployed = await deployBots({ root, env: { ...process.env, HOME: home }, log: (l) => lines.push(l) });

      const dist = readFileSync(join(root, 'dist', 'import-csv.js'), 'utf8');
      expect(dist).toContain('Object.assign(exports, module.exports);');
      expect(deployed).toEqual([{ name: 'import-csv', id: BOT_ID, dist: join(root, 'dist', 'import-csv.js'), bytes: Buffer.byteLength(dist) }]);
      expect(JSON.parse(readFileSync(join(root, 'medplum.config.json'), 'utf8')).bots[0].id).toBe(BOT_ID);
      expect(lines).toContain(`running  medplum --base-url ${baseUrl} bot deploy import-csv`);

      // Two logins with the client credentials grant: ours (to resolve the id) and the CLI's.
      const tokenRequests = requests.filter((r) => r.path === '/oauth2/token');
      expect(tokenRequests).toHaveLength(2);
      for (const r of tokenRequests) {
        expect(new URLSearchParams(r.body).get('grant_type')).toBe('client_credentials');
      }
      // Every other request carried the issued token.
      expect(requests.filter((r) => r.path !== '/oauth2/token').every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);

      // The CLI saved the TypeScript source on the Bot, then deployed the bundle.
      const routes = requests.map((r) => `${r.method} ${r.path.split('?')[0]}`);
      expect(routes).toEqual([
        'POST /oauth2/token',
        'GET /auth/me',
        'GET /fhir/R4/Bot',
        'POST /oauth2/token',
        'GET /auth/me',
        `GET /fhir/R4/Bot/${BOT_ID}`,
        'POST /fhir/R4/Binary',
        `PUT /fhir/R4/Bot/${BOT_ID}`,
        `POST /fhir/R4/Bot/${BOT_ID}/$deploy`,
      ]);
      const upload = requests.find((r) => r.path.startsWith('/fhir/R4/Binary')) as Recorded;
      expect(upload.body).toBe(readFileSync(source, 'utf8'));
      expect(bot.sourceCode).toMatchObject({ title: 'import-csv.ts', url: `${baseUrl}storage/source-1` });
      const deploy = JSON.parse((requests.at(-1) as Recorded).body) as { code: string; filename: string };
      expect(deploy).toEqual({ code: dist, filename: 'import-csv.js' });
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(home, { recursive: true, force: true });
    }
  });

  test('fails with a clear message when the project has no Bot of that name, before calling the CLI', async () => {
    requests = [];
    bot = { resourceType: 'Bot', id: BOT_ID, name: 'something-else' };
    const root = mkdtempSync(join(tmpdir(), 'deploy-test-'));
    try {
      const source = join(__dirname, '..', '..', 'src', 'bots', 'import-csv.ts');
      writeFileSync(join(root, 'medplum.config.json'), JSON.stringify({ bots: [{ name: 'other', id: '', source, dist: 'dist/other.js' }] }));
      vi.stubEnv('MEDPLUM_BASE_URL', baseUrl);
      vi.stubEnv('MEDPLUM_CLIENT_ID', CLIENT_ID);
      vi.stubEnv('MEDPLUM_CLIENT_SECRET', CLIENT_SECRET);
      const run = vi.fn(async () => 0);

      await expect(deployBots({ root, run, log: () => undefined })).rejects.toThrow("No Bot named 'other' in this project: run npm run setup first");
      expect(run).not.toHaveBeenCalled();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('a failing CLI run fails the deploy', async () => {
    bot = { resourceType: 'Bot', id: BOT_ID, name: 'import-csv' };
    const root = mkdtempSync(join(tmpdir(), 'deploy-test-'));
    try {
      const source = join(__dirname, '..', '..', 'src', 'bots', 'import-csv.ts');
      writeFileSync(join(root, 'medplum.config.json'), JSON.stringify({ bots: [{ name: 'import-csv', id: BOT_ID, source, dist: 'dist/import-csv.js' }] }));
      vi.stubEnv('MEDPLUM_BASE_URL', baseUrl);
      vi.stubEnv('MEDPLUM_CLIENT_ID', CLIENT_ID);
      vi.stubEnv('MEDPLUM_CLIENT_SECRET', CLIENT_SECRET);

      await expect(deployBots({ root, run: async () => 1, log: () => undefined })).rejects.toThrow(
        'medplum bot deploy import-csv failed (exit code 1)'
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
