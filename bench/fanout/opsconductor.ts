/**
 * OpsConductor as a fan-out contender: a real `opsconductor start` process on PGlite or on a fresh
 * PostgreSQL database, set up through its HTTP API (credential, N targets, a one-step job), timed
 * per run, with where each run's time went from the server's own timestamps.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';

import { type BenchContext, type Contender, noDb, type RunOutcome, type Series } from './contenders.ts';
import { cpuOf } from './cpu.ts';
import { createDatabase } from './database.ts';
import { type Fleet, freePort } from './fleet.ts';
import { type Api, login, memoryOf, type RunDetail, type Server, startServer, timedRun } from './server.ts';
import { COMMAND } from './settings.ts';
import { summariseTraces, traceSnapshot, type TraceSnapshot } from './sql-trace.ts';
import { mb, median, round } from './util.ts';

const iso = (a: string | null) => (a ? new Date(a).getTime() : NaN);

/** Where a run's time went, from the server's own timestamps (same machine, same clock). */
function phases(detail: RunDetail, postedAtMs: number, receivedAtMs: number) {
  const targetMs = detail.targets.map((t) => iso(t.finished_at) - iso(t.started_at)).filter(Number.isFinite);
  const stepMs = detail.steps.map((s) => s.duration_ms ?? NaN).filter(Number.isFinite);
  const runMs = iso(detail.finished_at) - iso(detail.started_at);
  const sorted = [...targetMs].sort((a, b) => a - b);
  const starts = detail.targets.map((t) => iso(t.started_at)).filter(Number.isFinite);
  return {
    post_to_queued_ms: iso(detail.queued_at) - postedAtMs,
    queued_to_started_ms: iso(detail.started_at) - iso(detail.queued_at),
    started_to_finished_ms: runMs,
    finished_to_event_ms: round(receivedAtMs - iso(detail.finished_at)),
    // A target's time from its claim to its result; the step's time is connect + command.
    target_ms_p50: round(median(targetMs)),
    target_ms_p90: round(sorted[Math.floor(sorted.length * 0.9)] ?? NaN),
    target_ms_max: round(sorted[sorted.length - 1] ?? NaN),
    step_ms_p50: round(median(stepMs)),
    // Average number of targets claimed and unfinished while the run ran (the job allows CONCURRENCY).
    effective_concurrency: Number((targetMs.reduce((a, b) => a + b, 0) / runMs).toFixed(1)),
    first_to_last_claim_ms: starts.length ? Math.max(...starts) - Math.min(...starts) : NaN,
  };
}

/** What the contender keeps between set-up, runs and finish. */
interface State {
  ctx: BenchContext;
  db: 'pglite' | 'postgres';
  label: string;
  fleet: Fleet;
  workDir: string;
  traceFile: string;
  traces: TraceSnapshot[];
  breakdown: Array<Record<string, unknown>>;
  server?: Server;
  api?: Api;
  jobId: number;
  targetIds: number[];
  backends: () => Promise<Map<number, number>>;
  rssBeforeRunsKb: number;
  warmupMs: number;
  sampleStdout?: string;
}

/** OpsConductor on `db`: a real server process, set up through its HTTP API. */
export function opsConductor(ctx: BenchContext, db: 'pglite' | 'postgres', fleet: Fleet, workDir: string): Contender {
  const label = db === 'pglite' ? 'opsconductor (PGlite)' : 'opsconductor (PostgreSQL)';
  const traceFile = join(workDir, `trace-${db}.json`);
  const state: State = { ctx, db, label, fleet, workDir, traceFile, traces: [], breakdown: [], jobId: 0, targetIds: [], backends: noDb, rssBeforeRunsKb: 0, warmupMs: 0 };
  return {
    tool: 'opsconductor',
    label,
    setup: () => setup(state),
    run: () => runOnce(state),
    clientCpu: () => (state.server ? cpuOf(state.server.pid).ownMs : 0),
    dbCpu: () => state.backends(),
    finish: async () => finish(state),
  };
}

async function setup(s: State): Promise<void> {
  const databaseUrl = await prepareDatabase(s);
  const started = await bootServer(s, databaseUrl);
  try {
    const api = await login(started.url);
    s.api = api;
    await prepareJob(s, api);
    await warmUp(s, api, started);
  } catch (e) {
    s.ctx.log(`${s.label}: server output:\n${started.output()}`);
    throw e;
  }
  if (s.ctx.settings.traceDb) {
    await traceSnapshot(started, s.traceFile);
  }
}

/** On PostgreSQL, a fresh database (dropped at clean-up) whose backends' CPU is watched; its URL. */
async function prepareDatabase(s: State): Promise<string | undefined> {
  if (s.db !== 'postgres') {
    return undefined;
  }
  const database = await createDatabase(s.ctx.settings.postgresUrl);
  s.ctx.onCleanup(`${s.label}: drop database`, database.drop);
  s.backends = database.backends;
  return database.url;
}

/** The server's Node flags, preloads and extra environment, from --cpu-prof, --trace-db and --server-env. */
function serverExtras(s: State): { nodeArgs: string[]; imports: string[]; env: Record<string, string> } {
  const { settings } = s.ctx;
  const nodeArgs: string[] = [];
  if (settings.cpuProf) {
    // One file per thread (main, tsx's loader thread); the main thread's is the big one.
    const dir = join(settings.cpuProf, `opsconductor-${s.db}-n${settings.targets}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', dir);
  }
  const imports = settings.traceDb ? [join(import.meta.dirname, 'trace-db.ts')] : [];
  const env = { ...settings.serverEnv, ...(settings.traceDb ? { OC_BENCH_TRACE_FILE: s.traceFile } : {}) };
  return { nodeArgs, imports, env };
}

/** Starts the server (stopped at clean-up) on a fresh data directory. */
async function bootServer(s: State, databaseUrl: string | undefined): Promise<Server> {
  const { nodeArgs, imports, env } = serverExtras(s);
  const dataDir = join(s.workDir, `data-${s.db}`);
  mkdirSync(dataDir, { recursive: true });
  const bootStarted = performance.now();
  const started = await startServer({ port: await freePort(), dataDir, databaseUrl, concurrency: s.ctx.settings.concurrency, nodeArgs, imports, env });
  s.server = started;
  s.ctx.onCleanup(`${s.label}: stop server`, started.stop);
  s.ctx.log(`${s.label}: server pid ${started.pid} up in ${round(performance.now() - bootStarted)} ms at ${started.url}`);
  return started;
}

/** The fleet's credential, one target per host (imported 1000 at a time) and the one-step job. */
async function prepareJob(s: State, api: Api): Promise<void> {
  const { fleet } = s;
  const { targets: N, concurrency } = s.ctx.settings;
  const credential = await api.call<{ id: number }>('POST', '/credentials', { name: 'bench-fleet', type: 'ssh', username: 'octest', private_key: fleet.clientKey });
  const importStarted = performance.now();
  for (let i = 0; i < N; i += 1000) {
    const rows = fleet.hosts.slice(i, i + 1000).map((host, j) => ({ name: `fleet-${i + j + 1}`, host, port: fleet.port, os_type: 'linux', protocol: 'ssh', credential_id: credential.id }));
    const report = await api.call<{ created: number; errors: unknown[]; target_ids: number[] }>('POST', '/targets/import', rows);
    if (report.errors.length > 0 || report.created !== rows.length) {
      throw new Error(`target import: ${JSON.stringify(report.errors.slice(0, 3))}`);
    }
    s.targetIds.push(...report.target_ids);
  }
  s.ctx.log(`${s.label}: imported ${s.targetIds.length} targets in ${round(performance.now() - importStarted)} ms`);
  const job = await api.call<{ id: number }>('POST', '/jobs', { name: 'bench-fanout-uname', steps: [{ type: 'command', name: 'uname', command: COMMAND }], concurrency });
  s.jobId = job.id;
}

/** One untimed run (pins the host keys), then the server's RSS before the timed runs. */
async function warmUp(s: State, api: Api, started: Server): Promise<void> {
  const { log } = s.ctx;
  const warm = await timedRun(api, started.url, s.jobId, s.targetIds, s.ctx.remainingMs());
  s.warmupMs = warm.wallMs;
  log(`${s.label}: warm-up: ${round(warm.wallMs)} ms, ${warm.succeeded}/${s.ctx.settings.targets} succeeded (host keys pinned on first use)`);
  if (!warm.ok) {
    log(`${s.label}: warm-up failures, e.g. ${JSON.stringify(warm.detail.targets.filter((t) => t.status !== 'succeeded').slice(0, 3))}`);
  }
  s.rssBeforeRunsKb = memoryOf(started.pid).rssKb;
}

async function runOnce(state: State): Promise<RunOutcome> {
  const { log } = state.ctx;
  const s = state.server as Server;
  const postedAt = Date.now();
  const r = await timedRun(state.api as Api, s.url, state.jobId, state.targetIds, state.ctx.remainingMs());
  const p = phases(r.detail, postedAt, postedAt + r.wallMs);
  state.breakdown.push({ run_id: r.runId, wall_ms: round(r.wallMs), post_ms: round(r.postMs), ...p });
  state.sampleStdout ??= r.detail.steps.find((st) => st.target_id !== null)?.stdout.trim();
  if (!r.ok) {
    log(`${state.label}: failures, e.g. ${JSON.stringify(r.detail.targets.filter((t) => t.status !== 'succeeded').slice(0, 3))}`);
    log(`${state.label}: server output (warnings and errors):\n${s.output()}`);
  }
  if (state.ctx.settings.traceDb) {
    state.traces.push(await traceSnapshot(s, state.traceFile));
  }
  return { wallMs: r.wallMs, ok: r.ok, succeeded: r.succeeded, extra: p };
}

function finish(state: State): Pick<Series, 'peakRssMb' | 'details'> {
  const { settings, log } = state.ctx;
  const memory = memoryOf((state.server as Server).pid);
  return {
    peakRssMb: mb(memory.peakKb),
    details: {
      database: state.db,
      rss_before_runs_mb: mb(state.rssBeforeRunsKb),
      rss_after_runs_mb: mb(memory.rssKb),
      warmup_ms: round(state.warmupMs),
      sample_stdout: state.sampleStdout,
      runs: state.breakdown,
      ...(settings.traceDb ? { sql_per_run: summariseTraces(state.label, state.traces, settings.targets, log) } : {}),
    },
  };
}
