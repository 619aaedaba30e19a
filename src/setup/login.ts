import { normalizeErrorString } from '@medplum/core';
import type { Target } from '../cli/connect';
import { connectToMedplum } from '../cli/connect';

/** Logs in as every command here does (client credentials from the environment); a failure names the server. */
export async function logIn(baseUrl: string): Promise<Target> {
  try {
    return await connectToMedplum();
  } catch (err) {
    throw new Error(`Could not log in to ${baseUrl} with MEDPLUM_CLIENT_ID / MEDPLUM_CLIENT_SECRET: ${normalizeErrorString(err)}`, {
      cause: err,
    });
  }
}
