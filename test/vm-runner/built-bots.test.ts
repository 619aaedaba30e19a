// Generic checks of every bot listed in medplum.config.json, as built by `npm run build`:
// the bundle exists, is CommonJS, and the vmcontext runtime finds exports.handler.
// Bot-specific behaviour is tested elsewhere.
import { MockClient } from '@medplum/mock';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { readBotConfig } from '../../esbuild-script.mjs';
import { BotRunError, runBotInVm } from '../helpers/vm-runner';

const projectRoot = fileURLToPath(new URL('../../', import.meta.url));
const bots = readBotConfig().bots ?? [];

describe('built bots', () => {
  it('medplum.config.json lists at least one bot', () => {
    expect(bots.length, 'medplum.config.json has no bots').toBeGreaterThan(0);
  });

  for (const bot of bots) {
    describe(bot.name, () => {
      const dist = join(projectRoot, bot.dist);
      /** Every check needs the bundle; fail (never skip) with a clear message if it is absent. */
      const readDist = (): string => {
        expect(existsSync(dist), `${bot.dist} is missing: run \`npm run build\` (does ${bot.source} exist?)`).toBe(true);
        return readFileSync(dist, 'utf8');
      };

      it('has a dist bundle', () => {
        readDist();
      });

      it('contains no top-level ESM syntax', () => {
        const code = readDist();
        // esbuild emits top-level statements at column 0.
        expect(code, `${bot.dist} has top-level import/export`).not.toMatch(/^(?:import|export)\b/m);
        // Authoritative: it must compile as a classic script, as the server's vm requires.
        expect(() => new vm.Script(code), `${bot.dist} does not compile as a script`).not.toThrow();
      });

      it('bundles no test-only code (MockClient, fhir-router) and no bot-layer package', () => {
        const code = readDist();
        expect(code).not.toMatch(/node_modules\/@medplum\/(mock|fhir-router|core|definitions)\//);
        expect(code).not.toMatch(/src\/lib\/local-medplum\//);
      });

      it('exports a handler that the vmcontext runtime reaches', async () => {
        // The bot may reject the trivial input; we only care that exports.handler was called.
        const code = readDist();
        let handlerFound: boolean;
        let detail = '';
        try {
          ({ handlerFound } = await runBotInVm({ code, medplum: new MockClient(), event: { input: {} } }));
        } catch (err) {
          if (!(err instanceof BotRunError)) throw err;
          ({ handlerFound } = err);
          detail = ` (${err.message})`;
        }
        expect(handlerFound, `${bot.dist}: the vmcontext runtime found no exports.handler function${detail}`).toBe(true);
      });
    });
  }
});
