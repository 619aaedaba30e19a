import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * `npm run test:integration`: the suites under test/integration, against the real Medplum named by
 * MEDPLUM_BASE_URL / MEDPLUM_CLIENT_ID / MEDPLUM_CLIENT_SECRET (environment or .env).
 * MEDPLUM_INTEGRATION=1 is what lets them run: under the default `npm test` they are collected but
 * skipped, even when a .env file holds credentials, so a plain test run never writes to a server.
 */
export default defineConfig({
  root: fileURLToPath(new URL('../..', import.meta.url)),
  test: {
    include: ['test/integration/**/*.test.ts'],
    env: { MEDPLUM_INTEGRATION: '1' },
    testTimeout: 180_000,
    hookTimeout: 180_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
