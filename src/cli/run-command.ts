import { normalizeErrorString } from '@medplum/core';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { redactUrls } from './redact';

/** True when the module at `moduleUrl` is the script node was started with (not imported by a test). */
export function isMainModule(moduleUrl: string): boolean {
  return Boolean(process.argv[1]) && resolve(process.argv[1]) === fileURLToPath(moduleUrl);
}

/**
 * Runs a command's main and exits with its code. Usage errors (commander) keep commander's exit
 * code; any other error is printed as `name: message` and exits with `errorExitCode`.
 */
export function runCommand(name: string, main: (args: string[]) => Promise<number>, errorExitCode = 2): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const error = err as { code?: string; exitCode?: number };
      if (error.code?.startsWith('commander.')) {
        process.exit(error.exitCode ?? 2);
      }
      // Errors may repeat a URL they were given, credentials included.
      process.stderr.write(`${name}: ${redactUrls(normalizeErrorString(err), [process.env.MEDPLUM_BASE_URL])}\n`);
      process.exit(errorExitCode);
    }
  );
}
