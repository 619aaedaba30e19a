import type { MedplumClient } from '@medplum/core';
import { getReferenceString, normalizeErrorString } from '@medplum/core';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import esbuild from 'esbuild';
import { botBuildOptions } from '../../esbuild-script.mjs';
import { connectionSettings, connectToMedplum } from '../cli/connect';
import { redactUrls } from '../cli/redact';
import { isMainModule, runCommand } from '../cli/run-command';
import type { BotConfigEntry } from './bot-config';
import { botConfigPath, readBotConfigFile, REPO_ROOT, writeBotId } from './bot-config';

/** Runs the Medplum CLI; resolves with its exit code. */
export type CliRunner = (args: string[], options: { cwd: string; env: NodeJS.ProcessEnv }) => Promise<number>;

export interface DeployOptions {
  /** Directory holding medplum.config.json; bot source/dist paths are relative to it. Default: the repository. */
  root?: string;
  /** Bot names to deploy (default: every bot in medplum.config.json). */
  names?: string[];
  /** Environment for the CLI (default: process.env, after .env is loaded). */
  env?: NodeJS.ProcessEnv;
  /** How the CLI is run (default: this Node binary running @medplum/cli's entry point). */
  run?: CliRunner;
  log?: (line: string) => void;
}

export interface DeployedBot {
  name: string;
  id: string;
  dist: string;
  bytes: number;
}

/** The @medplum/cli entry point (its `bin`), run with the current Node so that it gets Node 22. */
export function medplumCliPath(): string {
  return createRequire(import.meta.url).resolve('@medplum/cli');
}

/**
 * Runs the CLI with its output passed on line by line, redacted: it is given the base URL, which
 * may hold credentials, and repeats it in its errors.
 */
const runCli: CliRunner = (args, { cwd, env }) =>
  new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [medplumCliPath(), ...args], { cwd, env, stdio: ['inherit', 'pipe', 'pipe'] });
    const known = [env.MEDPLUM_BASE_URL, ...args.filter((a) => a.includes('://'))];
    const finished = [passRedacted(child.stdout, process.stdout, known), passRedacted(child.stderr, process.stderr, known)];
    child.on('error', reject);
    child.on('close', (code, signal) => {
      void Promise.all(finished).then(() => resolvePromise(code ?? (signal ? 1 : 0)));
    });
  });

async function passRedacted(from: Readable, to: NodeJS.WritableStream, known: (string | undefined)[]): Promise<void> {
  for await (const line of createInterface({ input: from, crlfDelay: Infinity })) {
    to.write(redactUrls(line, known) + '\n');
  }
}

/**
 * `npm run deploy`: builds every bot in medplum.config.json and deploys it with the Medplum CLI
 * (`medplum bot deploy <name>`: saves the source on the Bot, then `$deploy`s the bundle).
 *
 * Authentication: the CLI reads MEDPLUM_BASE_URL, MEDPLUM_CLIENT_ID and MEDPLUM_CLIENT_SECRET from
 * its environment (it also loads .env itself) and logs in with the client credentials grant; no
 * `medplum login` is needed. This step checks the variables first and names the missing ones before
 * building or calling the CLI, and passes the base URL as `--base-url` too, because a saved CLI
 * profile (~/.medplum/default.json) would otherwise take precedence over the environment.
 *
 * A config entry without an id (or with an id this project does not have) is resolved by name and
 * the id is written into medplum.config.json, since that is the only place the CLI looks.
 */
export async function deployBots(options: DeployOptions = {}): Promise<DeployedBot[]> {
  const write = options.log ?? ((line: string) => process.stdout.write(line + '\n'));
  const settings = connectionSettings(); // throws, naming every missing variable
  // Every line is printed without the credentials the base URL may hold (it is passed to the CLI as is).
  const log = (line: string): void => write(redactUrls(line, [settings.baseUrl]));
  const env = options.env ?? process.env;
  const root = options.root ?? REPO_ROOT;
  const configPath = botConfigPath(root);
  const config = readBotConfigFile(configPath);
  const bots = selectBots(config.bots, options.names, configPath);

  for (const bot of bots) {
    const dist = absolute(root, bot.dist);
    await esbuild.build({ ...botBuildOptions(absolute(root, bot.source), dist), absWorkingDir: root });
    log(`built    ${bot.name} -> ${bot.dist}`);
  }

  warnAboutSavedProfile(env, settings.clientId, log);
  const { medplum, description } = await connectToMedplum();
  log(`deploying to ${description}`);

  const deployed: DeployedBot[] = [];
  for (const bot of bots) {
    const id = await resolveBotId(medplum, bot, log);
    if (id !== bot.id) {
      writeBotId(bot.name, id, configPath);
      log(`wrote    Bot id ${id} for '${bot.name}' into ${configPath}`);
    }
    const args = ['--base-url', settings.baseUrl, 'bot', 'deploy', bot.name];
    log(`running  medplum ${args.join(' ')}`);
    const code = await (options.run ?? runCli)(args, { cwd: root, env });
    if (code !== 0) {
      throw new Error(`medplum bot deploy ${bot.name} failed (exit code ${code}); see its output above`);
    }
    const dist = absolute(root, bot.dist);
    deployed.push({ name: bot.name, id, dist, bytes: readFileSync(dist).length });
    log(`deployed ${bot.name} (Bot/${id})`);
  }
  return deployed;
}

function selectBots(bots: BotConfigEntry[], names: string[] | undefined, configPath: string): BotConfigEntry[] {
  if (!names?.length) {
    if (!bots.length) {
      throw new Error(`${configPath} lists no bots`);
    }
    return bots;
  }
  return names.map((name) => {
    const bot = bots.find((b) => b.name === name);
    if (!bot) {
      throw new Error(`${configPath} has no bot named '${name}' (it has: ${bots.map((b) => b.name).join(', ')})`);
    }
    return bot;
  });
}

/** The Bot to deploy to: the configured id when this project has it, else the one Bot with that name. */
export async function resolveBotId(medplum: MedplumClient, bot: BotConfigEntry, log: (line: string) => void): Promise<string> {
  if (bot.id) {
    try {
      const existing = await medplum.readResource('Bot', bot.id, { cache: 'no-cache' });
      if (existing.name !== bot.name) {
        log(`warning: Bot/${bot.id} is named '${existing.name}', not '${bot.name}'; deploying to it as medplum.config.json says`);
      }
      return bot.id;
    } catch (err) {
      log(`note:    Bot/${bot.id} from medplum.config.json: ${normalizeErrorString(err)}; looking '${bot.name}' up by name`);
    }
  }
  const found = (await medplum.searchResources('Bot', { name: bot.name, _count: '100' }, { cache: 'no-cache' })).filter(
    (b) => b.name === bot.name
  );
  if (found.length === 1) {
    return found[0].id;
  }
  if (!found.length) {
    throw new Error(`No Bot named '${bot.name}' in this project: run npm run setup first`);
  }
  throw new Error(
    `${found.length} Bots are named '${bot.name}' (${found.map(getReferenceString).join(', ')}): put the right id into medplum.config.json`
  );
}

/** A saved default CLI profile would override MEDPLUM_CLIENT_ID / MEDPLUM_CLIENT_SECRET from the environment. */
function warnAboutSavedProfile(env: NodeJS.ProcessEnv, clientId: string, log: (line: string) => void): void {
  const file = join(env.HOME ?? homedir(), '.medplum', 'default.json');
  if (!existsSync(file)) {
    return;
  }
  try {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { options?: string };
    const profile = stored.options ? (JSON.parse(stored.options) as { clientId?: string }) : undefined;
    if (profile?.clientId && profile.clientId !== clientId) {
      log(
        `warning: the Medplum CLI profile in ${file} names client ${profile.clientId}, which takes precedence over MEDPLUM_CLIENT_ID; remove it with: npx medplum profile remove default`
      );
    }
  } catch {
    // An unreadable profile file is the CLI's problem; it reports it itself.
  }
}

function absolute(root: string, path: string): string {
  return isAbsolute(path) ? path : resolve(root, path);
}

if (isMainModule(import.meta.url)) {
  runCommand(
    'deploy',
    async (names) => {
      const deployed = await deployBots({ names });
      process.stdout.write(`Done: ${deployed.length} bot(s) deployed\n`);
      return 0;
    },
    1
  );
}
