import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One entry of medplum.config.json, as `medplum bot deploy` reads it. */
export interface BotConfigEntry {
  name: string;
  id: string;
  source: string;
  dist: string;
}

export interface BotConfigFile {
  bots: BotConfigEntry[];
  [key: string]: unknown;
}

/** The repository root (where package.json and medplum.config.json live). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function botConfigPath(root = REPO_ROOT): string {
  return join(root, 'medplum.config.json');
}

export function readBotConfigFile(path = botConfigPath()): BotConfigFile {
  let config: BotConfigFile;
  try {
    config = JSON.parse(readFileSync(path, 'utf8')) as BotConfigFile;
  } catch (err) {
    throw new Error(`Could not read ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!Array.isArray(config.bots)) {
    throw new Error(`${path} has no "bots" list`);
  }
  return config;
}

/**
 * Writes a Bot's id into its medplum.config.json entry (the only place `medplum bot deploy` looks).
 * Returns false when the id was already there. Other entries and fields are kept as they are.
 */
export function writeBotId(name: string, id: string, path = botConfigPath()): boolean {
  const config = readBotConfigFile(path);
  const entry = config.bots.find((b) => b.name === name);
  if (!entry) {
    throw new Error(`${path} has no bot named '${name}'`);
  }
  if (entry.id === id) {
    return false;
  }
  entry.id = id;
  writeFileSync(path, JSON.stringify(config, null, 2) + '\n', 'utf8');
  return true;
}
