/**
 * `npm run bench`: measures the importer on this machine and writes bench/results.json and the
 * README's Benchmark table. Exits 1 when a target is missed. See bench/README.md.
 *
 *   npm run bench                       full run (about 15 minutes on 2 cores)
 *   npm run bench -- --only=plan-first  issue 11's comparison, quota-bound bot and real server only (about 3 minutes;
 *                                       writes bench/tmp/results-plan-first.json, not results.json or the README)
 *   npm run bench -- --runs=5           more runs per figure (default 3; parse only and peak memory: at least 5)
 *   npm run bench -- --quick            tiny sizes, to check the harness; writes bench/tmp/results-quick.json only
 *   npm run bench -- --server=off       skip the real server even when MEDPLUM_BASE_URL is set
 *   npm run bench -- --server=local     run the real-server part against the local Medplum (checks its RateLimit reading)
 *   npm run bench -- --server-rows=300 --server-runs=3   rows per phase and runs on the real server
 *
 * Sizes are chosen so that the slow variants (one request per row with 20 ms latency, the
 * million-row memory run) fit the time budget; rates are per row, so they compare across sizes.
 *
 * Targets: the mapping stage (parse + map, no server) above 20,000 rows/s for each profile
 * workload (bench/mapping.ts), the speed-up with 20 ms per request, peak memory, and issue 11's:
 * points per row (new, changed, unchanged), the unchanged re-run against conditional-PUT batches,
 * requests per 1,000 rows, and the quota-bound bot's share of the quota's rate (bench/plan-first.ts,
 * bench/quota-bot.ts, bench/real-server.ts). The former target of the whole pipeline at half the parse-only rate is retired: it
 * lay below the JSON floor any importer writing FHIR to Medplum has (see the README).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { DEFAULT_BATCH_SIZE } from '../src/lib/settings';
import { ensurePatientsFile, patientsText } from './generate';
import type { RunSample } from './measure';
import { dryRun, importLocal, jsonFloor, mappedUnits, parseFile, parseText, perRowLocal, pipelineNull } from './measure';
import { measurePeakRss } from './peak-rss';
import { measureBatchSizes } from './batch-sizes';
import { mapOnly, mappingWorkloads } from './mapping';
import type { PlanFirstSection, RowKind } from './plan-first';
import { KINDS, measurePlanFirst } from './plan-first';
import type { QuotaSection } from './quota-bot';
import { measureQuota } from './quota-bot';
import type { RealServerSection } from './real-server';
import { realServerSection } from './real-server';
import type { Figure, Results, Target } from './report';
import { markdownTables, summary, target, updateReadme } from './report';
import { log, median, timed } from './stats';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

interface Sizes {
  parseRows: number;
  mappingRows: number;
  pipelineRows: number;
  localRows: number;
  requestRows: number;
  latencyPerRowRows: number;
  rssRows: number;
  sweepRows: number;
  quotaRows: number;
  encounterRows: number;
  /** Issue 11: rows of the side-by-side comparison, of its warm-up, and of the quota-bound bot's upload. */
  planRows: number;
  planWarmRows: number;
  botQuotaRows: number;
}

const FULL: Sizes = {
  parseRows: 200_000,
  mappingRows: 100_000,
  pipelineRows: 100_000,
  localRows: 20_000,
  requestRows: 1_000,
  latencyPerRowRows: 500,
  rssRows: 1_000_000,
  sweepRows: 6_000,
  quotaRows: 3_000,
  encounterRows: 5_000,
  planRows: 10_000,
  planWarmRows: 1_000,
  botQuotaRows: 20_000,
};

const QUICK: Sizes = {
  parseRows: 5_000,
  mappingRows: 2_000,
  pipelineRows: 2_000,
  localRows: 1_000,
  requestRows: 1_000,
  latencyPerRowRows: 20,
  rssRows: 5_000,
  sweepRows: 1_000,
  quotaRows: 600,
  encounterRows: 1_000,
  planRows: 1_000,
  planWarmRows: 200,
  botQuotaRows: 2_000,
};

const LATENCY_MS = 20;

/** The mapping stage (parse + map, no server) must keep well ahead of what a server takes in. */
const MAPPING_TARGET_ROWS_PER_SECOND = 20_000;

/** Issue 11's targets. */
const UNCHANGED_MAX_POINTS_PER_ROW = 0.1;
const UNCHANGED_MIN_SPEEDUP = 5;
const WRITE_MAX_POINTS_PER_ROW = 105;
const QUOTA_MIN_SHARE = 0.9;
/** Requests per 1,000 independent rows: ceil(1000 / batch size) + 4 (lookups, writes, race checks). */
const MAX_REQUESTS_PER_1000 = Math.ceil(1000 / DEFAULT_BATCH_SIZE) + 4;
/** Rows per phase on a real server: three phases of conditional PUTs (140 points a row) fit Medplum's default 50,000-point window one at a time. */
const DEFAULT_SERVER_ROWS = 300;

function flag(name: string): string | undefined {
  const prefix = `--${name}=`;
  const found = process.argv.find((a) => a === `--${name}` || a.startsWith(prefix));
  return found === undefined ? undefined : found.startsWith(prefix) ? found.slice(prefix.length) : '';
}

function rateFigure(label: string, samples: RunSample[], note?: string): Figure {
  const runs = samples.map((s) => s.rowsPerSecond);
  return { label, value: median(runs), unit: 'rows/s', runs, rows: samples[0]?.rows, note };
}

function fmtRows(n: number): string {
  return n.toLocaleString('en-US');
}

async function main(): Promise<number> {
  const quick = flag('quick') !== undefined;
  const sizes = quick ? QUICK : FULL;
  const runs = Math.max(1, Number(flag('runs') ?? 3));
  const parseRuns = Math.max(runs, 5);
  const rssRuns = quick ? 1 : Math.max(runs, 5);
  const began = performance.now();
  const loadAtStart = loadavg()[0];
  const sourceAtStart = gitState();
  const hashAtStart = await srcHash();
  const only = flag('only');
  if (only !== undefined && only !== 'plan-first') {
    throw new Error(`--only takes plan-first (the other sections run together), not '${only}'`);
  }
  const serverRows = Math.max(1, Number(flag('server-rows') ?? DEFAULT_SERVER_ROWS));
  const serverRuns = Math.max(1, Number(flag('server-runs') ?? runs));

  const throughput = only ? undefined : await measureThroughput(sizes, runs, parseRuns, rssRuns);
  const figures: Record<string, Figure> = { ...throughput?.figures };
  const diagnostics: Record<string, Figure> = { ...throughput?.diagnostics };
  const targets: Record<string, Target> = { ...throughput?.targets };

  // 10. Issue 11: plan-first against conditional-PUT batches; the quota-bound bot; a real server.
  log(`plan-first: ${fmtRows(sizes.planRows)} rows, new / unchanged / changed, importer and conditional-PUT batches`);
  const planFirst = await measurePlanFirst(sizes.planRows, runs, sizes.planWarmRows, log);
  const quotaBot = await measureQuota(planFirst.importer.new.pointsPerRow, sizes.botQuotaRows, [1, 5], log);
  if (quotaBot.error) {
    log(`quota-bound bot NOT MEASURED: ${quotaBot.error}`);
  }
  const realServer = await realServerSection(flag('server'), serverRows, serverRuns);
  if (realServer.error) {
    log(`real server FAILED: ${realServer.error}`);
  }
  Object.assign(figures, planFirstFigures(planFirst, quotaBot, realServer, sizes));
  Object.assign(targets, planFirstTargets(figures));

  const results: Results = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model.trim() ?? 'unknown',
      memoryGB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      loadAverage: { start: loadAtStart, end: loadavg()[0] },
    },
    date: new Date().toISOString(),
    source: { ...sourceAtStart, changedDuringRun: (await srcHash()) !== hashAtStart },
    runs: { timed: runs, parseOnly: parseRuns, peakRss: rssRuns, warmUp: 'one untimed warm-up run per timed measurement' },
    durationSeconds: (performance.now() - began) / 1000,
    sections: only ? 'plan-first' : 'all',
    figures,
    diagnostics,
    planFirst: { ...planFirst, quotaBot, realServer },
    batchSizes: throughput?.batchSizes,
    targets: { ...targets, met: Object.values(targets).every((t) => t.met) },
  };

  const tables = markdownTables(results);
  if (quick || only) {
    const file = `tmp/results-${quick ? 'quick' : only}.json`;
    await mkdir(here('tmp'), { recursive: true });
    await writeFile(here(file), JSON.stringify(results, null, 2) + '\n');
    log(`wrote bench/${file} (results.json and the README are written by full runs only)`);
  } else {
    await writeFile(here('results.json'), JSON.stringify(results, null, 2) + '\n');
    const updated = await updateReadme(here('../README.md'), tables);
    log(updated ? 'README.md Benchmark table updated' : 'README.md has no bench markers: table not written there');
  }
  process.stdout.write(summary(results) + '\n');
  return results.targets.met && !realServer.error ? 0 : 1;
}

/** Sections 1 to 9: parse, mapping, pipeline, local Medplum, requests, latency, peak memory, batch sizes. */
async function measureThroughput(
  sizes: Sizes,
  runs: number,
  parseRuns: number,
  rssRuns: number
): Promise<{ figures: Record<string, Figure>; diagnostics: Record<string, Figure>; batchSizes: NonNullable<Results['batchSizes']>; targets: Record<string, Target> }> {
  const figures: Record<string, Figure> = {};
  const diagnostics: Record<string, Figure> = {};
  log(`generating inputs (${fmtRows(sizes.parseRows)} rows to parse)`);
  const parseTextInput = patientsText(sizes.parseRows);
  const pipelineInput = patientsText(sizes.pipelineRows);
  const localInput = patientsText(sizes.localRows);
  const parseFilePath = here(`tmp/patients-${sizes.parseRows}.csv`);
  const rssPath = here(`tmp/patients-${sizes.rssRows}.csv`);
  await ensurePatientsFile(parseFilePath, sizes.parseRows);
  await ensurePatientsFile(rssPath, sizes.rssRows);

  // 1. Parse only.
  const parseSamples = await timed('parse (text)', parseRuns, () => parseText(parseTextInput, sizes.parseRows), () =>
    parseText(parseTextInput, sizes.parseRows)
  );
  figures.parseText = rateFigure(`Parse only, in memory (csvFromText), ${fmtRows(sizes.parseRows)} rows`, parseSamples);
  const parseFileSamples = await timed('parse (file)', parseRuns, () => parseFile(parseFilePath, sizes.parseRows), () =>
    parseFile(parseFilePath, sizes.parseRows)
  );
  figures.parseFile = rateFigure(`Parse only, streamed from disk (csvFromFile), ${fmtRows(sizes.parseRows)} rows`, parseFileSamples);

  // 2. The mapping stage alone: parse + map with the profiles' compiled mappings, no server.
  const mappingKeys: string[] = [];
  for (const workload of mappingWorkloads(sizes.mappingRows)) {
    const samples = await timed(`mapping (${workload.profile} ${workload.table})`, runs, () => mapOnly(workload), () => mapOnly(workload));
    figures[workload.key] = rateFigure(
      `Mapping only (parse + map), ${workload.label}, ${fmtRows(sizes.mappingRows)} rows`,
      samples,
      `${workload.profile} profile, table ${workload.table}: ${workload.writes}. csvFromText records -> column index, row key, RowReader, the compiled mapping's mapRow; no duplicate check, no JSON, no server`
    );
    mappingKeys.push(workload.key);
  }

  // 3. The whole pipeline into the null server, and where its time goes.
  const warmPipeline = patientsText(Math.min(20_000, sizes.pipelineRows));
  const warmRows = Math.min(20_000, sizes.pipelineRows);
  const pipelineSamples = await timed('pipeline (null server)', runs, () => pipelineNull(pipelineInput, sizes.pipelineRows), () =>
    pipelineNull(warmPipeline, warmRows)
  );
  figures.pipeline = rateFigure(
    `Whole pipeline (importCsv) into a null server, ${fmtRows(sizes.pipelineRows)} rows`,
    pipelineSamples,
    'structure check, validation, mapping, batching, JSON both ways, classification; the server answers at once'
  );
  diagnostics.dryRun = rateFigure(
    'parse + structure check + validate + map + serialise each row (dry run)',
    await timed('dry run', runs, () => dryRun(pipelineInput, sizes.pipelineRows), () => dryRun(warmPipeline, warmRows))
  );
  diagnostics.importerShare = rateFigure(
    '… + batches sent, answers read and classified, the null server\'s own time left out',
    pipelineSamples.map((s) => ({ ...s, rowsPerSecond: s.rows / (s.seconds - (s.serverSeconds ?? 0)) }))
  );
  diagnostics.overJson = { ...figures.pipeline, label: '… + the null server answering in the same process (the pipeline figure)' };

  // The floor under the pipeline: JSON that any importer writing to Medplum must produce and read.
  const units = await mappedUnits(pipelineInput);
  jsonFloor(units.slice(0, warmRows), DEFAULT_BATCH_SIZE);
  const floors = Array.from({ length: runs }, (_, i) => {
    const floor = jsonFloor(units, DEFAULT_BATCH_SIZE);
    log(`json floor: run ${i + 1}/${runs}: serialise ${Math.round(floor.serialise.rowsPerSecond).toLocaleString('en-US')} rows/s, decode ${Math.round(floor.decode.rowsPerSecond).toLocaleString('en-US')} rows/s`);
    return floor;
  });
  diagnostics.serialiseOnly = rateFigure(
    "Floor: serialise and UTF-8-encode each row's batch entry, nothing else (rows mapped beforehand)",
    floors.map((f) => f.serialise)
  );
  diagnostics.decodeOnly = rateFigure("Floor: decode the server's answers (UTF-8, JSON), nothing else", floors.map((f) => f.decode));
  const floorRates = floors.map((f) => 1 / (1 / figures.parseText.value + 1 / f.serialise.rowsPerSecond + 1 / f.decode.rowsPerSecond));
  diagnostics.jsonFloor = {
    label: 'Floor: parse + serialise + decode, with every other stage free',
    value: median(floorRates),
    unit: 'rows/s',
    runs: floorRates,
  };

  // 4 and 5. Into the local Medplum: batches vs one upsert per row.
  const warmLocal = patientsText(1_000, 7, 'W');
  const localSamples = await timed('local import', runs, () => importLocal(localInput, sizes.localRows), () =>
    importLocal(warmLocal, 1_000)
  );
  figures.local = rateFigure(`End to end into the local Medplum, ${fmtRows(sizes.localRows)} rows`, localSamples);
  const perRowSamples = await timed('local per-row upsert', runs, () => perRowLocal(localInput, sizes.localRows), () =>
    perRowLocal(warmLocal, 1_000)
  );
  figures.perRow = rateFigure(`One upsertResource per row into the local Medplum, ${fmtRows(sizes.localRows)} rows`, perRowSamples);
  figures.speedup = ratioFigure('Importer speed-up over one upsert per row, no latency', localSamples, perRowSamples);

  // 6. Requests per 1,000 independent rows.
  const requestInput = patientsText(sizes.requestRows, 3, 'R');
  const perThousand = (s: RunSample): number => ((s.requests ?? NaN) * 1000) / s.rows;
  const ourRequests = await timed('requests (importer)', runs, () => importLocal(requestInput, sizes.requestRows));
  const rowRequests = await timed('requests (per row)', runs, () => perRowLocal(requestInput, sizes.requestRows));
  figures.requestsImporter = countFigure(`Requests per 1,000 rows, importer (batch size ${DEFAULT_BATCH_SIZE})`, ourRequests.map(perThousand));
  figures.requestsPerRow = countFigure('Requests per 1,000 rows, one upsert per row', rowRequests.map(perThousand));

  // 7. With a simulated 20 ms round trip per request.
  const latencyPerRowInput = patientsText(sizes.latencyPerRowRows, 5, 'L');
  const latencyOurs = await timed(`local import, ${LATENCY_MS} ms`, runs, () =>
    importLocal(localInput, sizes.localRows, { latencyMs: LATENCY_MS })
  );
  const latencyRows = await timed(`per-row upsert, ${LATENCY_MS} ms`, runs, () =>
    perRowLocal(latencyPerRowInput, sizes.latencyPerRowRows, { latencyMs: LATENCY_MS })
  );
  figures.latencyImporter = rateFigure(`With ${LATENCY_MS} ms per request: importer, ${fmtRows(sizes.localRows)} rows`, latencyOurs);
  figures.latencyPerRow = rateFigure(
    `With ${LATENCY_MS} ms per request: one upsert per row, ${fmtRows(sizes.latencyPerRowRows)} rows`,
    latencyRows
  );
  figures.latencySpeedup = ratioFigure(`With ${LATENCY_MS} ms per request: importer speed-up`, latencyOurs, latencyRows);

  // 8. Peak memory, a million rows from disk, one child process per run.
  const rss: number[] = [];
  const baselines: number[] = [];
  for (let i = 0; i < rssRuns; i++) {
    const result = await measurePeakRss(rssPath);
    if (result.rows !== sizes.rssRows) {
      throw new Error(`peak RSS run imported ${result.rows} rows, expected ${sizes.rssRows}`);
    }
    rss.push(Math.max(result.maxRss, result.sampledPeakRss) / 1e6);
    baselines.push(result.baselineRss / 1e6);
    log(`peak RSS: run ${i + 1}/${rssRuns}: ${Math.round(rss[i])} MB in ${result.seconds.toFixed(1)} s (${Math.round(result.rows / result.seconds).toLocaleString('en-US')} rows/s)`);
  }
  figures.peakRss = {
    label: `Peak RSS importing a ${fmtRows(sizes.rssRows)}-row file from disk into the null server`,
    value: median(rss),
    unit: 'MB',
    runs: rss,
    rows: sizes.rssRows,
    note: `MB = 10^6 bytes; max of getrusage ru_maxrss and 100 ms samples; RSS before the import: ${Math.round(median(baselines))} MB (Node, tsx, libraries)`,
  };

  // 9. Batch sizes.
  const batchSizes = await measureBatchSizes(
    { rows: sizes.sweepRows, quotaRows: sizes.quotaRows, encounterRows: sizes.encounterRows, latencyMs: LATENCY_MS },
    runs
  );

  // The pipeline against half the parse-only rate is no longer a target: it sat below the JSON
  // floor (parse + serialise + decode), out of reach for any importer that writes FHIR JSON. The
  // pipeline figure stays, as a figure; server-side targets replace it later. Requests per 1,000
  // rows are a target of issue 11's section (lookups, writes and race checks, by kind of row).
  const targets: Record<string, Target> = {
    ...Object.fromEntries(
      mappingKeys.map((key) => [key, target(key, 'mapping stage, parse + map', figures[key].value, '>=', MAPPING_TARGET_ROWS_PER_SECOND)])
    ),
    latencySpeedup: target('latencySpeedup', '', figures.latencySpeedup.value, '>=', 50),
    peakRss: target('peakRss', '', figures.peakRss.value, '<', 300),
  };
  return { figures, diagnostics, batchSizes, targets };
}

/** Issue 11's figures: the ones with targets, and the real server's when it ran. */
function planFirstFigures(p: PlanFirstSection, quota: QuotaSection, real: RealServerSection, sizes: Sizes): Record<string, Figure> {
  const rows = fmtRows(p.rows);
  const pointsFigure = (label: string, kind: RowKind): Figure => ({
    label,
    value: p.importer[kind].pointsPerRow,
    unit: 'points/row',
    runs: p.importer[kind].runs.map((r) => r.pointsPerRow),
    rows: p.rows,
    note: `conditional-PUT batches of the same rows: ${p.baseline[kind].pointsPerRow.toFixed(2)} points/row`,
  });
  const figures: Record<string, Figure> = {
    planUnchangedPoints: pointsFigure(`Unchanged re-run of a ${rows}-row file: points per row, importer`, 'unchanged'),
    planUnchangedSpeedup: {
      label: `Unchanged re-run of a ${rows}-row file: importer speed-up over conditional-PUT batches (modeled server time)`,
      value: p.speedups.unchanged.value,
      unit: 'x',
      runs: p.speedups.unchanged.runs,
      rows: p.rows,
    },
    planNewPoints: pointsFigure(`New rows (${rows}): points per row, importer`, 'new'),
    planChangedPoints: pointsFigure(`Changed rows (${rows}): points per row, importer`, 'changed'),
  };
  for (const kind of KINDS) {
    figures[`planRequests_${kind}`] = {
      label: `Requests per 1,000 independent rows, importer, ${kind} rows (lookups, writes, race checks)`,
      value: p.requestsPer1000[kind],
      unit: 'requests',
      runs: [p.requestsPer1000[kind]],
      rows: 1000,
      note: 'counted by the local Medplum (stats.requests); the same on every run',
    };
  }
  for (const cron of [1, 5]) {
    const run = quota.runs.find((r) => r.cronMinutes === cron);
    figures[`quotaShare_cron${cron}`] = {
      label: `Quota-bound bot, ${fmtRows(sizes.botQuotaRows)} new rows, cron every ${cron} min: share of the rate the quota allows`,
      value: run ? run.share * 100 : NaN,
      unit: '%',
      runs: run ? [run.share * 100] : [],
      rows: sizes.botQuotaRows,
      note: run
        ? `${Math.round(run.rowsPerMinute)} rows/min against ${Math.round(quota.allowedRowsPerMinute)} (50,000 / ${quota.pointsPerNewRow.toFixed(2)} points per new row); simulated, deterministic: one run`
        : `not measured: ${quota.error ?? 'no run'}`,
    };
  }
  // The local stand-in (--server=local) checks the harness: its figures are in the section, not here.
  if (real.medians && real.speedups && !real.local) {
    const n = fmtRows(real.rows ?? 0);
    const realPoints = (kind: RowKind, label: string): Figure => ({
      label: `Real server, ${n} rows: ${label}`,
      value: real.medians?.importer[kind].pointsPerRow ?? NaN,
      unit: 'points/row',
      runs: (real.phases ?? []).filter((ph) => ph.method === 'importer' && ph.kind === kind).map((ph) => ph.pointsPerRow),
      rows: real.rows,
      note: `${real.target}; RateLimit header`,
    });
    figures.realUnchangedPoints = realPoints('unchanged', 'unchanged re-run, points per row, importer');
    figures.realUnchangedSpeedup = {
      label: `Real server, ${n} rows: unchanged re-run, importer speed-up over conditional-PUT batches`,
      value: real.speedups.unchanged,
      unit: 'x',
      runs: [],
      rows: real.rows,
      note: `${real.target}; wall clock`,
    };
    figures.realNewPoints = realPoints('new', 'new rows, points per row, importer');
    figures.realChangedPoints = realPoints('changed', 'changed rows, points per row, importer');
  }
  return figures;
}

/** Issue 11's targets, on the figures planFirstFigures made. */
function planFirstTargets(figures: Record<string, Figure>): Record<string, Target> {
  const targets: Record<string, Target> = {
    planUnchangedPoints: target('planUnchangedPoints', '', figures.planUnchangedPoints.value, '<=', UNCHANGED_MAX_POINTS_PER_ROW),
    planUnchangedSpeedup: target('planUnchangedSpeedup', '', figures.planUnchangedSpeedup.value, '>=', UNCHANGED_MIN_SPEEDUP),
    planNewPoints: target('planNewPoints', 'a plain create costs 100', figures.planNewPoints.value, '<=', WRITE_MAX_POINTS_PER_ROW),
    planChangedPoints: target('planChangedPoints', '', figures.planChangedPoints.value, '<=', WRITE_MAX_POINTS_PER_ROW),
  };
  for (const kind of KINDS) {
    const key = `planRequests_${kind}`;
    targets[key] = target(key, `ceil(1000 / ${DEFAULT_BATCH_SIZE}) + 4`, figures[key].value, '<=', MAX_REQUESTS_PER_1000);
  }
  for (const cron of [1, 5]) {
    const key = `quotaShare_cron${cron}`;
    targets[key] = target(key, '', figures[key].value, '>=', QUOTA_MIN_SHARE * 100);
  }
  if (figures.realUnchangedPoints) {
    targets.realUnchangedPoints = target('realUnchangedPoints', '', figures.realUnchangedPoints.value, '<=', UNCHANGED_MAX_POINTS_PER_ROW);
    targets.realUnchangedSpeedup = target('realUnchangedSpeedup', '', figures.realUnchangedSpeedup.value, '>=', UNCHANGED_MIN_SPEEDUP);
    targets.realNewPoints = target('realNewPoints', '', figures.realNewPoints.value, '<=', WRITE_MAX_POINTS_PER_ROW);
    targets.realChangedPoints = target('realChangedPoints', '', figures.realChangedPoints.value, '<=', WRITE_MAX_POINTS_PER_ROW);
  }
  return targets;
}

/** Which engine was measured: HEAD and uncommitted changes in src/ ('unknown' outside a git checkout). */
function gitState(): Omit<Results['source'], 'changedDuringRun'> {
  const git = (...args: string[]): string =>
    execFileSync('git', args, { cwd: here('..'), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  try {
    return { commit: git('rev-parse', 'HEAD'), srcModified: git('status', '--porcelain', '--', 'src').length > 0 };
  } catch {
    return { commit: 'unknown', srcModified: false };
  }
}

/** A hash of every file under src/, to notice an engine edited while the benchmark ran. */
async function srcHash(): Promise<string> {
  const root = here('../src');
  const files = (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
    .sort();
  const hash = createHash('sha256');
  for (const file of files) {
    hash.update(file).update(await readFile(file));
  }
  return hash.digest('hex');
}

function countFigure(label: string, runs: number[]): Figure {
  return { label, value: median(runs), unit: 'requests', runs };
}

/** A speed-up: the ratio of the medians; `runs` holds the run-by-run ratios. */
function ratioFigure(label: string, ours: RunSample[], theirs: RunSample[]): Figure {
  const rate = (s: RunSample[]): number => median(s.map((x) => x.rowsPerSecond));
  const runs = ours.map((s, i) => s.rowsPerSecond / (theirs[i]?.rowsPerSecond ?? NaN));
  return { label, value: rate(ours) / rate(theirs), unit: 'x', runs };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    console.error(err);
    process.exitCode = 2;
  }
);
