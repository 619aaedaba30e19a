import { MedplumClient, normalizeErrorString } from '@medplum/core';
import { config as loadDotenv } from 'dotenv';
import { redactUrl, redactUrls } from './redact';

export interface Target {
  medplum: MedplumClient;
  /** Human description for the output, e.g. "local in-memory Medplum"; never holds credentials. */
  description: string;
  local: boolean;
}

/** The Medplum connection settings every command reads (a .env file is fine). */
export const CONNECTION_VARIABLES = ['MEDPLUM_BASE_URL', 'MEDPLUM_CLIENT_ID', 'MEDPLUM_CLIENT_SECRET'] as const;

export const LOCAL_MEDPLUM_DESCRIPTION = 'local in-memory Medplum (nothing is kept after the command ends)';

/** Said when the local Medplum is asked for in an install without the development dependencies. */
export const LOCAL_MEDPLUM_NEEDS_DEV_DEPENDENCIES =
  'the local in-memory Medplum needs the development dependencies: run npm install ' +
  '(or set MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET to import into a Medplum server)';

export function loadEnvironment(): void {
  loadDotenv({ quiet: true });
}

/** Reads the connection variables; names every missing one. */
export function connectionSettings(): { baseUrl: string; clientId: string; clientSecret: string } {
  loadEnvironment();
  const missing = CONNECTION_VARIABLES.filter((name) => !process.env[name]);
  if (missing.length) {
    throw new Error(
      `Missing ${missing.join(', ')}: set them in the environment or a .env file ` +
        '(a ClientApplication of your Medplum project: Project Admin -> Clients).'
    );
  }
  return {
    baseUrl: process.env.MEDPLUM_BASE_URL as string,
    clientId: process.env.MEDPLUM_CLIENT_ID as string,
    clientSecret: process.env.MEDPLUM_CLIENT_SECRET as string,
  };
}

/**
 * Logs in to the Medplum named by the environment. A failure names the server without
 * credentials; the original error is not attached, because its message repeats the full URL.
 */
export async function connectToMedplum(): Promise<Target> {
  const { baseUrl, clientId, clientSecret } = connectionSettings();
  const medplum = new MedplumClient({ baseUrl, clientId });
  try {
    await medplum.startClientLogin(clientId, clientSecret);
  } catch (err) {
    throw new Error(
      `Could not log in to ${redactUrl(baseUrl)} with MEDPLUM_CLIENT_ID / MEDPLUM_CLIENT_SECRET: ${redactUrls(normalizeErrorString(err), [baseUrl])}`
    );
  }
  return { medplum, description: `Medplum at ${redactUrl(baseUrl)}`, local: false };
}

/**
 * The local in-memory Medplum. Loaded only when asked for: it is built on @medplum/mock and
 * @medplum/fhir-router, development dependencies that `npm ci --omit=dev` leaves out, and an
 * import into a real server must work without them.
 */
export async function createLocalTarget(): Promise<Target> {
  let localMedplum: typeof import('../lib/local-medplum');
  try {
    localMedplum = await import('../lib/local-medplum');
  } catch (err) {
    if (isMissingModule(err)) {
      throw new Error(`${LOCAL_MEDPLUM_NEEDS_DEV_DEPENDENCIES} (${normalizeErrorString(err)})`, { cause: err });
    }
    throw err;
  }
  return { medplum: localMedplum.createLocalMedplum(), description: LOCAL_MEDPLUM_DESCRIPTION, local: true };
}

/** Node's "cannot find package/module" errors, from import() (ESM) or require() (CommonJS). */
function isMissingModule(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND' || /Cannot find (package|module)/.test(normalizeErrorString(err));
}

/**
 * The local in-memory Medplum when asked for, or when no server is configured; the real one
 * when MEDPLUM_BASE_URL is set.
 */
export async function chooseTarget(options: { local?: boolean }): Promise<Target> {
  loadEnvironment();
  if (options.local || !process.env.MEDPLUM_BASE_URL) {
    return createLocalTarget();
  }
  return connectToMedplum();
}
