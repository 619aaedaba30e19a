import { MedplumClient } from '@medplum/core';
import { config as loadDotenv } from 'dotenv';
import { createLocalMedplum } from '../lib/local-medplum';

export interface Target {
  medplum: MedplumClient;
  /** Human description for the output, e.g. "local in-memory Medplum". */
  description: string;
  local: boolean;
}

/** The Medplum connection settings every command reads (a .env file is fine). */
export const CONNECTION_VARIABLES = ['MEDPLUM_BASE_URL', 'MEDPLUM_CLIENT_ID', 'MEDPLUM_CLIENT_SECRET'] as const;

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

/** Logs in to the Medplum named by the environment. */
export async function connectToMedplum(): Promise<Target> {
  const { baseUrl, clientId, clientSecret } = connectionSettings();
  const medplum = new MedplumClient({ baseUrl, clientId });
  await medplum.startClientLogin(clientId, clientSecret);
  return { medplum, description: `Medplum at ${baseUrl}`, local: false };
}

/**
 * The local in-memory Medplum when asked for, or when no server is configured; the real one
 * when MEDPLUM_BASE_URL is set.
 */
export async function chooseTarget(options: { local?: boolean }): Promise<Target> {
  loadEnvironment();
  if (options.local || !process.env.MEDPLUM_BASE_URL) {
    return {
      medplum: createLocalMedplum(),
      description: 'local in-memory Medplum (nothing is kept after the command ends)',
      local: true,
    };
  }
  return connectToMedplum();
}
