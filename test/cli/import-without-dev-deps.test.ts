import type { Bundle } from '@medplum/fhirtypes';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { batchAnswerer } from '../../bench/null-medplum';
import { LOCAL_MEDPLUM_NEEDS_DEV_DEPENDENCIES } from '../../src/cli/connect';
import type { StandInServer } from '../helpers/stand-in-server';
import { fakeAccessToken, readBody, startStandInServer } from '../helpers/stand-in-server';

/**
 * `npm ci --omit=dev`, then `npm run import` against a real server: the command must not need the
 * development dependencies, among them those the local in-memory Medplum is built on
 * (@medplum/mock, @medplum/fhir-router). The CLI runs as `npm run import` runs it (tsx on the
 * project's Node 22, same heap bound), with a module hook that makes resolving every package the
 * lock file marks `dev` fail as when it is not installed (so tsx itself, and the esbuild it runs
 * on, must be dependencies), against a stand-in Medplum: the token endpoint, auth/me, and the
 * batch endpoint answering as Medplum's batch processor does (bench/null-medplum.ts).
 * That the local Medplum still works by default is test/cli/import-cli.test.ts.
 */

const root = join(__dirname, '..', '..');
const run = promisify(execFile);
const WITHOUT_DEV_DEPENDENCIES = pathToFileURL(join(__dirname, 'fixtures', 'without-dev-dependencies.mjs')).href;
const CLIENT_ID = 'import-client';
const CLIENT_SECRET = 'import-secret';
const TOKEN = fakeAccessToken(CLIENT_ID);
const ACCESS_KEY = 'k3y-in-query';

let server: StandInServer;
let dir: string;
let batches: Bundle[] = [];
const answer = batchAnswerer();

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = (await readBody(req)).toString('utf8');
  const path = new URL(req.url ?? '/', 'http://stand-in/').pathname;
  const send = (status: number, value: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(value));
  };
  if (req.method === 'POST' && path === '/oauth2/token') {
    const form = new URLSearchParams(body);
    const ok = form.get('client_id') === CLIENT_ID && form.get('client_secret') === CLIENT_SECRET;
    // Like the server's token response: the token plus references to the project and the client.
    const tokens = {
      token_type: 'Bearer',
      access_token: TOKEN,
      expires_in: 3600,
      project: { reference: 'Project/project-1' },
      profile: { reference: `ClientApplication/${CLIENT_ID}` },
    };
    send(ok ? 200 : 400, ok ? tokens : { error: 'invalid_client' });
    return;
  }
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    send(401, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'login' }] });
    return;
  }
  if (req.method === 'GET' && path === '/auth/me') {
    send(200, {
      profile: { resourceType: 'ClientApplication', id: CLIENT_ID },
      project: { resourceType: 'Project', id: 'project-1', name: 'CSV migration' },
      membership: { resourceType: 'ProjectMembership', id: 'membership-1' },
    });
    return;
  }
  if (req.method === 'POST' && /^\/fhir\/R4\/[A-Za-z]+\/_search$/.test(path)) {
    // The importer may look up stored resources by identifier first: nothing is stored here.
    send(200, { resourceType: 'Bundle', type: 'searchset', total: 0, entry: [] });
    return;
  }
  if (req.method === 'POST' && path === '/fhir/R4/') {
    const bundle = JSON.parse(body) as Bundle;
    batches.push(bundle);
    send(200, answer(bundle));
    return;
  }
  send(404, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-found', details: { text: `${req.method} ${path}` } }] });
}

/** `npm run import -- args`, without the development dependencies; resolves with exit code and output. */
async function importWithoutDevDependencies(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv = {
    ...process.env,
    ...env,
    PATH: `${join(root, 'node_modules', '.bin')}:${process.env.PATH}`,
    NODE_OPTIONS: `--max-old-space-size=192 --import=${WITHOUT_DEV_DEPENDENCIES}`,
  };
  try {
    const { stdout, stderr } = await run('tsx', ['src/cli/import.ts', ...args], { cwd: root, env: childEnv });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

beforeAll(async () => {
  server = await startStandInServer(handle);
  dir = mkdtempSync(join(tmpdir(), 'import-no-dev-'));
  writeFileSync(join(dir, 'patients.csv'), 'patient_id,first_name,last_name,birth_date,gender\nP1,Ada,Lovelace,1815-12-10,F\nP2,Alan,Turing,1912-06-23,M\n');
});

afterAll(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run import without the development dependencies', () => {
  test('imports into a Medplum server; the URL is printed without the key in its query string', async () => {
    batches = [];
    const { code, stdout, stderr } = await importWithoutDevDependencies([join(dir, 'patients.csv')], {
      MEDPLUM_BASE_URL: `${server.url}?access_key=${ACCESS_KEY}`,
      MEDPLUM_CLIENT_ID: CLIENT_ID,
      MEDPLUM_CLIENT_SECRET: CLIENT_SECRET,
    });
    expect(stderr).toContain(`Importing into Medplum at ${server.url}?***`);
    expect(code).toBe(0);
    expect(stdout).toMatch(/patients\.csv\s+patients\s+2\s+2\s+0\s+0\s+0\s+0/);
    expect(stdout + stderr).not.toContain(ACCESS_KEY);
    // The rows went to the server as Patient writes (conditional updates, or creates once a lookup found nothing stored).
    const writes = batches.flatMap((b) => b.entry ?? []).filter((e) => e.request?.method === 'PUT' || e.request?.method === 'POST');
    expect(writes.map((e) => e.request?.url.split('?')[0])).toEqual(['Patient', 'Patient']);
  }, 120_000);

  test('asking for the local Medplum says it needs the development dependencies', async () => {
    const { code, stderr } = await importWithoutDevDependencies(['--local', join(dir, 'patients.csv')], { MEDPLUM_BASE_URL: '' });
    expect(code).toBe(2);
    expect(stderr).toContain(`import: ${LOCAL_MEDPLUM_NEEDS_DEV_DEPENDENCIES}`);
    expect(stderr).toContain("Cannot find package '@medplum/");
  }, 120_000);
});
