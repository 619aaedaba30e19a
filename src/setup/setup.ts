import { normalizeErrorString } from '@medplum/core';
import { Command, InvalidArgumentError } from 'commander';
import { resolve } from 'node:path';
import { connectionSettings, connectToMedplum, loadEnvironment } from '../cli/connect';
import { redactUrls } from '../cli/redact';
import { isMainModule, runCommand } from '../cli/run-command';
import { botConfigPath, writeBotId } from './bot-config';
import type { SetupOptions } from './setup-project';
import { DEFAULT_BOT_NAME, DEFAULT_CRON, DEFAULT_TIMEOUT_SECONDS, resolveSetupOptions, setupProject } from './setup-project';

interface CliOptions {
  bot: string;
  projectId?: string;
  cron?: string | false;
  timeout?: number;
  timeBudget?: number | false;
  identifierBase?: string;
  runtime?: 'vmcontext' | 'awslambda';
  writeConfig: boolean;
  config?: string;
  mapping?: string;
  profile?: string;
}

/**
 * `npm run setup`: creates or updates, in the project of the ClientApplication named by
 * MEDPLUM_BASE_URL / MEDPLUM_CLIENT_ID / MEDPLUM_CLIENT_SECRET (environment or .env), the import-csv
 * Bot, its access policy, Subscriptions, schedule, timeout and secrets, then writes the Bot id into
 * medplum.config.json for `npm run deploy`. Safe to run again: it changes only what differs.
 */
export async function main(argv: string[], write: (line: string) => void = (line) => process.stdout.write(line + '\n')): Promise<number> {
  loadEnvironment();
  // Every line is printed without the credentials a MEDPLUM_BASE_URL may hold.
  const out = (line: string): void => write(redactUrls(line, [process.env.MEDPLUM_BASE_URL]));
  const program = new Command()
    .name('setup')
    .description('Create or update the import-csv Bot and what it needs in a Medplum project')
    .option('--bot <name>', 'bot name, as in medplum.config.json', DEFAULT_BOT_NAME)
    .option('--project-id <id>', 'project to set up (default: the project of the ClientApplication)')
    .option('--cron <expr>', `Bot.cronString, 5 fields (default '${DEFAULT_CRON}', or BOT_CRON)`)
    .option('--no-cron', 'remove the schedule (imports then run only from the Subscriptions or $execute)')
    .option('--timeout <seconds>', `Bot.timeout (default ${DEFAULT_TIMEOUT_SECONDS}, or BOT_TIMEOUT_SECONDS)`, wholeNumber)
    .option('--time-budget <seconds>', 'TIME_BUDGET_SECONDS project secret (default: 60% of the timeout)', wholeNumber)
    .option('--no-time-budget', 'leave the TIME_BUDGET_SECONDS secret alone')
    .option('--identifier-base <uri>', 'IDENTIFIER_BASE project secret (default: the IDENTIFIER_BASE variable; unset: left alone)')
    .option('--runtime <runtime>', 'Bot.runtimeVersion: vmcontext or awslambda (default: left to the server)', runtime)
    .option('--no-write-config', 'do not write the Bot id into medplum.config.json')
    .option('--config <path>', "medplum.config.json to write the Bot id into (default: the repository's)")
    .option('--mapping <folder>', 'store this folder of mappings in the project for the bot (one Library per mapping; others retired)')
    .option('--profile <name>', 'store a built-in profile (e.g. synthea-csv, guide) in the project for the bot')
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const cli = program.opts<CliOptions>();

  if (cli.mapping !== undefined && cli.profile !== undefined) {
    throw new Error('Give --mapping or --profile, not both');
  }
  const options: SetupOptions = {
    botName: cli.bot,
    projectId: cli.projectId,
    cronString: cli.cron === false ? null : (cli.cron ?? nonEmpty(process.env.BOT_CRON)),
    timeoutSeconds: cli.timeout ?? envNumber('BOT_TIMEOUT_SECONDS'),
    timeBudgetSeconds: cli.timeBudget === false ? null : cli.timeBudget,
    identifierBase: cli.identifierBase ?? nonEmpty(process.env.IDENTIFIER_BASE),
    runtimeVersion: cli.runtime,
    mappings: cli.mapping !== undefined ? { folder: resolve(cli.mapping) } : cli.profile !== undefined ? { profile: cli.profile } : undefined,
    log: (line) => out(`  ${line}`),
  };
  resolveSetupOptions(options); // bad values fail before logging in

  connectionSettings(); // names every missing variable before any request
  const target = await connectToMedplum();
  out(`Setting up Bot '${options.botName}' in ${target.description}`);
  const result = await setupProject(target.medplum, options);

  if (cli.writeConfig) {
    const path = cli.config ? resolve(cli.config) : botConfigPath();
    try {
      if (writeBotId(options.botName as string, result.botId, path)) {
        out(`  wrote   Bot id ${result.botId} for '${options.botName}' into ${path}`);
      }
    } catch (err) {
      out(`  warning: ${normalizeErrorString(err)}; npm run deploy will look the Bot up by name`);
    }
  }

  const count = (kind: string): number => result.actions.filter((a) => a.kind === kind).length;
  out(
    `Done: ${count('created')} created, ${count('updated')} updated, ${count('kept')} kept` +
      (result.warnings.length ? `, ${result.warnings.length} warning(s) above` : '') +
      `. Project/${result.projectId}, Bot/${result.botId}. Next: npm run deploy`
  );
  return 0;
}

function wholeNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new InvalidArgumentError('must be a whole number of seconds');
  }
  return n;
}

function runtime(value: string): 'vmcontext' | 'awslambda' {
  if (value !== 'vmcontext' && value !== 'awslambda') {
    throw new InvalidArgumentError('must be vmcontext or awslambda');
  }
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value?.trim() ? value.trim() : undefined;
}

function envNumber(name: string): number | undefined {
  const value = nonEmpty(process.env[name]);
  if (value === undefined) {
    return undefined;
  }
  const n = Number(value);
  if (!Number.isInteger(n)) {
    throw new Error(`${name} must be a whole number of seconds`);
  }
  return n;
}

if (isMainModule(import.meta.url)) {
  runCommand('setup', main, 1);
}
