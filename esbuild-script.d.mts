// Types for esbuild-script.mjs, so TypeScript tests can reuse the exact bot build options.
import type { BuildOptions } from 'esbuild';

export declare const botLayerPackages: string[];

/** esbuild options for one bot (CommonJS bundle with the `Object.assign(exports, module.exports)` footer). */
export declare function botBuildOptions(source: string, dist: string): BuildOptions;

/** One entry of medplum.config.json. */
export interface BotConfigEntry {
  name: string;
  id: string;
  source: string;
  dist: string;
}

export declare function readBotConfig(): { bots: BotConfigEntry[] };
