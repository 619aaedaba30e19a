import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { main as importMain } from '../../src/cli/import';
import { redactUrl, redactUrls } from '../../src/cli/redact';
import { deployBots } from '../../src/setup/deploy';
import { main as setupMain } from '../../src/setup/setup';
import { startStandInServer } from '../helpers/stand-in-server';

/**
 * Credentials in MEDPLUM_BASE_URL (userinfo, or a key in the query string) never reach the output:
 * not in the "... at <url>" lines, not in errors that repeat the URL (Node's fetch refuses URLs
 * with credentials and names the URL in full). Checked through the commands' main functions.
 */

const SECRET = 's3cret-Pa55';
let closedPort: number;

beforeAll(async () => {
  // A port nothing listens on: connections are refused.
  const server = await startStandInServer(async () => undefined);
  closedPort = Number(new URL(server.url).port);
  await server.close();
});

afterEach(() => {
  vi.unstubAllEnvs();
});

function connectTo(baseUrl: string): void {
  vi.stubEnv('MEDPLUM_BASE_URL', baseUrl);
  vi.stubEnv('MEDPLUM_CLIENT_ID', 'client-1');
  vi.stubEnv('MEDPLUM_CLIENT_SECRET', 'client-secret-1');
}

/** The rejection message of a command, with what it printed before failing. */
async function failure(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('the command did not fail');
}

describe('redactUrl', () => {
  test.each([
    ['https://user:secret@medplum.example.org/', 'https://***@medplum.example.org/'],
    ['https://user@medplum.example.org:8103/fhir/R4/', 'https://***@medplum.example.org:8103/fhir/R4/'],
    ['https://medplum.example.org/?key=secret&x=1', 'https://medplum.example.org/?***'],
    ['https://user:p@ss@medplum.example.org/path?key=secret#top', 'https://***@medplum.example.org/path?***#top'],
    ['https://medplum.example.org/fhir/R4/', 'https://medplum.example.org/fhir/R4/'],
    ['http://127.0.0.1:8103/', 'http://127.0.0.1:8103/'],
  ])('%s -> %s', (url, redacted) => {
    expect(redactUrl(url)).toBe(redacted);
    expect(redactUrl(redacted)).toBe(redacted); // redacting twice changes nothing
  });

  test('finds URLs inside messages, and a configured URL even when it does not parse', () => {
    expect(redactUrls(`Request cannot be constructed from a URL that includes credentials: https://u:${SECRET}@h.example/oauth2/token`)).toBe(
      'Request cannot be constructed from a URL that includes credentials: https://***@h.example/oauth2/token'
    );
    expect(redactUrls(`see 'https://h.example/a@b' and https://h.example/x?token=${SECRET}.`)).toBe(
      "see 'https://h.example/a@b' and https://h.example/x?***"
    );
    const malformed = `https://user:pa/${SECRET}@h.example/`;
    expect(redactUrls(`Invalid URL: ${malformed}oauth2/token`, [malformed])).toBe('Invalid URL: https://***@h.example/oauth2/token');
  });
});

describe('commands print no credentials from MEDPLUM_BASE_URL', () => {
  const withUserinfo = (): string => `http://importer:${SECRET}@127.0.0.1:${closedPort}/`;
  const withQueryKey = (): string => `http://127.0.0.1:${closedPort}/?access_key=${SECRET}`;

  test('npm run setup: the login error names the server without its userinfo (fetch refuses it and repeats it)', async () => {
    connectTo(withUserinfo());
    const out: string[] = [];
    const message = await failure(() => setupMain([], (line) => out.push(line)));
    expect(message).toContain(`Could not log in to http://***@127.0.0.1:${closedPort}/`);
    expect(message).toContain(`http://***@127.0.0.1:${closedPort}/oauth2/token`);
    expect(message + out.join('\n')).not.toContain(SECRET);
    expect(message).not.toContain('importer');
  });

  test('npm run setup: a refused connection names the server without its query string', async () => {
    connectTo(withQueryKey());
    const message = await failure(() => setupMain([], () => undefined));
    expect(message).toMatch(new RegExp(`^Could not log in to http://127\\.0\\.0\\.1:${closedPort}/\\?\\*\\*\\* with`));
    expect(message).not.toContain(SECRET);
  });

  test('npm run import: the login error is redacted, and nothing was printed before it', async () => {
    connectTo(withUserinfo());
    const dir = mkdtempSync(join(tmpdir(), 'redact-import-'));
    const written: string[] = [];
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => (written.push(String(chunk)), true));
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => (written.push(String(chunk)), true));
    try {
      const file = join(dir, 'patients.csv');
      writeFileSync(file, 'patient_id,first_name,last_name,birth_date,gender\nP1,A,B,1990-01-01,M\n');
      const message = await failure(() => importMain([file]));
      expect(message).toContain(`Could not log in to http://***@127.0.0.1:${closedPort}/`);
      expect(message + written.join('')).not.toContain(SECRET);
    } finally {
      stderr.mockRestore();
      stdout.mockRestore();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('npm run deploy: the login error is redacted, and the CLI is not called', async () => {
    connectTo(withUserinfo());
    const root = mkdtempSync(join(tmpdir(), 'redact-deploy-'));
    try {
      mkdirSync(join(root, 'src'));
      copyFileSync(join(__dirname, 'fixtures', 'tiny-bot.ts'), join(root, 'src', 'tiny-bot.ts'));
      writeFileSync(join(root, 'medplum.config.json'), JSON.stringify({ bots: [{ name: 'tiny', id: '', source: 'src/tiny-bot.ts', dist: 'dist/tiny-bot.js' }] }));
      const run = vi.fn(async () => 0);
      const lines: string[] = [];
      const message = await failure(() => deployBots({ root, run, log: (line) => lines.push(line) }));
      expect(message).toContain(`Could not log in to http://***@127.0.0.1:${closedPort}/`);
      expect(message + lines.join('\n')).not.toContain(SECRET);
      expect(run).not.toHaveBeenCalled();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

afterAll(() => {
  vi.restoreAllMocks();
});
