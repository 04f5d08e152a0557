/**
 * Fan-out benchmark: one command (`uname -a`) on N loopback SSH hosts, 50 at a time, with
 * OpsConductor (a real `opsconductor start` process, on PGlite and on PostgreSQL), parallel-ssh
 * and Ansible, plus OpsConductor's SSH transport driven directly (the floor under OpsConductor).
 *
 *   node --import tsx bench/fanout/run.ts --targets 200 [--db both|pglite|postgres] [--runs 3]
 *        [--concurrency 50] [--postgres-url postgres://postgres@127.0.0.1:5432/postgres]
 *        [--timeout-s 600] [--no-tools] [--sshd-reexec] [--out FILE] [--cpu-prof DIR] [--trace-db]
 *        [--server-env NAME=VALUE …]
 *
 * Every contender is set up and warmed up first (first handshakes, JIT, host keys pinned), then
 * the timed runs go in rounds — each round runs every contender once, in rotating order — so
 * load from elsewhere on the machine hits them alike. Reported: median wall time of the runs,
 * whether every host succeeded in every run, CPU per run (client, sshd fleet, PostgreSQL) and
 * the server's peak RSS. Writes bench/fanout/results-<date>-n<N>.json.
 *
 * --cpu-prof DIR writes V8 CPU profiles of the server (summarise with profile-summary.ts);
 * --trace-db counts and times the server's SQL statements per run (trace-db.ts). Both are
 * diagnostics that cost time: comparison figures come from runs without them. --server-env sets
 * an extra OPSCONDUCTOR_* variable on the servers (e.g. OPSCONDUCTOR_DB_POOL_MAX=50), for experiments.
 *
 * Installs nothing: parallel-ssh and ansible come from `apt-get install -y pssh ansible-core`.
 * Everything it starts is stopped, and every temp directory and database it creates is removed,
 * on success, failure, timeout (--timeout-s) or Ctrl-C.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import pg from 'pg';

import { cpuByPid, cpuDelta, cpuOf, fleetMs, load1, reapedChildrenMs } from './cpu.ts';
import { type Fleet, freePort, KEX, SSHD, startFleet } from './fleet.ts';
import { type Api, login, memoryOf, type RunDetail, type Server, startServer, timedRun } from './server.ts';
import { ansible, INSTALL_HINT, missingTools, pssh, ssh2Direct, type Tool } from './tools.ts';
import { guardCleanup } from '../guard.ts';

const COMMAND = 'uname -a';
const TARGET = { pssh: 0.8, ansible: 0.3 } as const;

const { values: flags } = parseArgs({
  options: {
    targets: { type: 'string', default: '200' },
    db: { type: 'string', default: 'both' },
    runs: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '50' },
    'postgres-url': { type: 'string', default: 'postgres://postgres@127.0.0.1:5432/postgres' },
    'timeout-s': { type: 'string', default: '600' },
    'no-tools': { type: 'boolean', default: false },
    'sshd-reexec': { type: 'boolean', default: false },
    out: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'trace-db': { type: 'boolean', default: false },
    'server-env': { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

function usage(message?: string): never {
  if (message) {
    process.stderr.write(`bench:fanout: ${message}\n`);
  }
  process.stderr.write(
    'usage: npm run bench:fanout -- --targets N [--db both|pglite|postgres] [--runs 3] [--concurrency 50]\n' +
      '         [--postgres-url URL] [--timeout-s 600] [--no-tools] [--sshd-reexec] [--out FILE] [--cpu-prof DIR] [--trace-db]\n' +
      '         [--server-env OPSCONDUCTOR_NAME=VALUE …]\n',
  );
  process.exit(message ? 2 : 0);
}

function positiveInt(name: string, value: string | undefined, max: number): number {
  if (!value || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > max) {
    usage(`--${name} must be a whole number from 1 to ${max}`);
  }
  return Number(value);
}

if (flags.help) {
  usage();
}
const N = positiveInt('targets', flags.targets, 10_000);
const RUNS = positiveInt('runs', flags.runs, 20);
const CONCURRENCY = positiveInt('concurrency', flags.concurrency, 1000);
const TIMEOUT_MS = positiveInt('timeout-s', flags['timeout-s'], 24 * 3600) * 1000;
const WITH_TOOLS = !flags['no-tools'];
const SSHD_REEXEC = flags['sshd-reexec'] ?? false;
const FLEET_SSHD = SSHD_REEXEC ? 'stock sshd (re-executed per connection)' : 'sshd -r (forked per connection, no re-exec)';
const SERVER_ENV = Object.fromEntries(
  (flags['server-env'] ?? []).map((pair) => {
    const m = /^(OPSCONDUCTOR_[A-Z0-9_]+)=(.*)$/.exec(pair);
    return m ? [m[1] as string, m[2] as string] : usage(`--server-env takes OPSCONDUCTOR_NAME=VALUE, not ${pair}`);
  }),
);
const DBS = ({ both: ['pglite', 'postgres'], pglite: ['pglite'], postgres: ['postgres'] } as Record<string, Array<'pglite' | 'postgres'>>)[flags.db ?? ''] ?? usage('--db must be both, pglite or postgres');

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${line}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const round = (x: number) => Math.round(x);
const mb = (kb: number) => Math.round(kb / 102.4) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- cleanup, deadline, signals

const cleanups: Array<{ what: string; fn: () => Promise<void> | void }> = [];
let cleaning: Promise<void> | undefined;

/** Registers `fn` to run at the end (last registered runs first), whatever happens. */
function onCleanup(what: string, fn: () => Promise<void> | void): void {
  cleanups.push({ what, fn });
}

function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const { what, fn } = cleanups.pop() as (typeof cleanups)[number];
      try {
        await fn();
      } catch (err) {
        log(`cleanup: ${what} failed: ${(err as Error).message}`);
      }
    }
  })());
}

const startedAt = Date.now();
const remainingMs = () => Math.max(1000, TIMEOUT_MS - (Date.now() - startedAt));
const watchdog = guardCleanup('bench:fanout', TIMEOUT_MS, cleanup, log);

// ---------------------------------------------------------------- contenders

/** One timed run as a contender reports it. */
interface RunOutcome {
  wallMs: number;
  ok: boolean;
  succeeded: number;
  /** CPU the contender measured itself; otherwise its counter's delta is used. */
  clientCpuMs?: number;
  extra?: Record<string, unknown>;
}

/** Something that fans the command out over the fleet. */
interface Contender {
  tool: 'parallel-ssh' | 'ansible' | 'ssh2' | 'opsconductor';
  label: string;
  /** Starts and warms up. */
  setup(): Promise<void>;
  run(): Promise<RunOutcome>;
  /** Cumulative CPU (ms) of the client side, read around each run. */
  clientCpu(): number;
  /** CPU snapshot of its database backends (PostgreSQL only). */
  dbCpu(): Promise<Map<number, number>>;
  /** Extra figures once every run is done (peak RSS, SQL trace). */
  finish(): Promise<Pick<Series, 'peakRssMb' | 'details'>>;
}

/** Results of one contender. */
interface Series {
  tool: string;
  label: string;
  runsMs: number[];
  medianMs: number;
  allSucceeded: boolean;
  succeeded: number[];
  peakRssMb?: number;
  /** CPU per run (ms): the tool's process tree or the OpsConductor server; the sshd fleet; PostgreSQL backends. */
  cpu: { client: number[]; sshd: number[]; db: number[] };
  /** 1-minute load average before each run. */
  load1: number[];
  details?: Record<string, unknown>;
}

const noDb = () => Promise.resolve(new Map<number, number>());

function toolContender(tool: Tool, contenderTool: Contender['tool'], label: string): Contender {
  if (tool.stop) {
    onCleanup(label, tool.stop);
  }
  return {
    tool: contenderTool,
    label,
    async setup() {
      log(`${label}: warm-up (${tool.version})`);
      const warm = await tool.run(Math.min(remainingMs(), 300_000));
      log(`${label}: warm-up: ${round(warm.wallMs)} ms, ${warm.succeeded}/${N} succeeded${warm.ok ? '' : ` (exit ${warm.exitCode})`}`);
    },
    run: () => tool.run(Math.min(remainingMs(), 300_000)),
    // A tool's processes are reaped by us when it exits: their CPU lands in our children's time.
    clientCpu: reapedChildrenMs,
    dbCpu: noDb,
    finish: async () => ({}),
  };
}

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

async function createDatabase(baseUrl: string): Promise<{ url: string; backends: () => Promise<Map<number, number>>; drop: () => Promise<void> }> {
  const name = `oc_bench_fanout_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: baseUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  // A connection to the maintenance database, to find the backends serving ours (their CPU is the run's).
  const watcher = new pg.Client({ connectionString: baseUrl });
  await watcher.connect();
  return {
    url: url.toString(),
    backends: async () => cpuByPid((await watcher.query<{ pid: number }>('select pid from pg_stat_activity where datname = $1', [name])).rows.map((r) => r.pid)),
    drop: async () => {
      await watcher.end().catch(() => {});
      const c = new pg.Client({ connectionString: baseUrl });
      await c.connect();
      try {
        await c.query(`drop database if exists "${name}" with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}

type TraceSnapshot = { seq: number; statements: Record<string, { count: number; ms: number }> };

/** Asks the server's SQL tracer for its counts since the last snapshot. */
async function traceSnapshot(server: Server, file: string): Promise<TraceSnapshot> {
  const read = (): TraceSnapshot => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as TraceSnapshot) : { seq: 0, statements: {} });
  const before = read().seq;
  server.signal('SIGUSR2');
  for (let waited = 0; waited < 5000; waited += 20) {
    await sleep(20);
    try {
      const now = read();
      if (now.seq > before) {
        return now;
      }
    } catch {
      // being written
    }
  }
  throw new Error('the SQL tracer did not answer');
}

/** Statements per run (median over runs), per target, and their summed in-flight time; logged and returned. */
function summariseTraces(label: string, traces: TraceSnapshot[]) {
  const keys = new Set(traces.flatMap((t) => Object.keys(t.statements)));
  const rows = [...keys].map((sql) => {
    const count = median(traces.map((t) => t.statements[sql]?.count ?? 0));
    const total = median(traces.map((t) => t.statements[sql]?.ms ?? 0));
    return { sql, count, per_target: Number((count / N).toFixed(2)), ms: round(total) };
  });
  rows.sort((a, b) => b.ms - a.ms);
  const perTarget = rows.filter((r) => !r.sql.startsWith('(pglite transaction')).reduce((a, r) => a + r.count, 0) / N;
  log(`${label}: SQL per run (median of ${traces.length}): ${round(perTarget * N)} statements = ${perTarget.toFixed(1)} per target`);
  for (const r of rows.slice(0, 25)) {
    log(`  ${String(r.count).padStart(6)} × (${r.per_target.toFixed(2).padStart(5)}/target) ${String(r.ms).padStart(7)} ms in flight  ${r.sql}`);
  }
  return { statements_per_target: Number(perTarget.toFixed(2)), top: rows.slice(0, 40) };
}

/** OpsConductor on `db`: a real server process, set up through its HTTP API. */
function opsConductor(db: 'pglite' | 'postgres', fleet: Fleet, workDir: string): Contender {
  const label = db === 'pglite' ? 'opsconductor (PGlite)' : 'opsconductor (PostgreSQL)';
  const traceFile = join(workDir, `trace-${db}.json`);
  const traces: TraceSnapshot[] = [];
  const breakdown: Array<Record<string, unknown>> = [];
  let server: Server | undefined;
  let api: Api | undefined;
  let jobId = 0;
  const targetIds: number[] = [];
  let backends = noDb;
  let rssBeforeRunsKb = 0;
  let warmupMs = 0;
  let sampleStdout: string | undefined;

  return {
    tool: 'opsconductor',
    label,
    async setup() {
      let databaseUrl: string | undefined;
      if (db === 'postgres') {
        const database = await createDatabase(flags['postgres-url'] as string);
        onCleanup(`${label}: drop database`, database.drop);
        databaseUrl = database.url;
        backends = database.backends;
      }
      const nodeArgs: string[] = [];
      if (flags['cpu-prof']) {
        // One file per thread (main, tsx's loader thread); the main thread's is the big one.
        const dir = join(flags['cpu-prof'], `opsconductor-${db}-n${N}-${Date.now()}`);
        mkdirSync(dir, { recursive: true });
        nodeArgs.push('--cpu-prof', '--cpu-prof-dir', dir);
      }
      const imports = flags['trace-db'] ? [join(import.meta.dirname, 'trace-db.ts')] : [];
      const env = { ...SERVER_ENV, ...(flags['trace-db'] ? { OC_BENCH_TRACE_FILE: traceFile } : {}) };
      const dataDir = join(workDir, `data-${db}`);
      mkdirSync(dataDir, { recursive: true });
      const bootStarted = performance.now();
      const started = await startServer({ port: await freePort(), dataDir, databaseUrl, concurrency: CONCURRENCY, nodeArgs, imports, env });
      server = started;
      onCleanup(`${label}: stop server`, started.stop);
      log(`${label}: server pid ${started.pid} up in ${round(performance.now() - bootStarted)} ms at ${started.url}`);
      try {
        api = await login(started.url);
        const credential = await api.call<{ id: number }>('POST', '/credentials', { name: 'bench-fleet', type: 'ssh', username: 'octest', private_key: fleet.clientKey });
        const importStarted = performance.now();
        for (let i = 0; i < N; i += 1000) {
          const rows = fleet.hosts.slice(i, i + 1000).map((host, j) => ({ name: `fleet-${i + j + 1}`, host, port: fleet.port, os_type: 'linux', protocol: 'ssh', credential_id: credential.id }));
          const report = await api.call<{ created: number; errors: unknown[]; target_ids: number[] }>('POST', '/targets/import', rows);
          if (report.errors.length > 0 || report.created !== rows.length) {
            throw new Error(`target import: ${JSON.stringify(report.errors.slice(0, 3))}`);
          }
          targetIds.push(...report.target_ids);
        }
        log(`${label}: imported ${targetIds.length} targets in ${round(performance.now() - importStarted)} ms`);
        const job = await api.call<{ id: number }>('POST', '/jobs', { name: 'bench-fanout-uname', steps: [{ type: 'command', name: 'uname', command: COMMAND }], concurrency: CONCURRENCY });
        jobId = job.id;
        const warm = await timedRun(api, started.url, jobId, targetIds, remainingMs());
        warmupMs = warm.wallMs;
        log(`${label}: warm-up: ${round(warm.wallMs)} ms, ${warm.succeeded}/${N} succeeded (host keys pinned on first use)`);
        if (!warm.ok) {
          log(`${label}: warm-up failures, e.g. ${JSON.stringify(warm.detail.targets.filter((t) => t.status !== 'succeeded').slice(0, 3))}`);
        }
        rssBeforeRunsKb = memoryOf(started.pid).rssKb;
      } catch (e) {
        log(`${label}: server output:\n${started.output()}`);
        throw e;
      }
      if (flags['trace-db']) {
        await traceSnapshot(started, traceFile);
      }
    },
    async run() {
      const s = server as Server;
      const postedAt = Date.now();
      const r = await timedRun(api as Api, s.url, jobId, targetIds, remainingMs());
      const p = phases(r.detail, postedAt, postedAt + r.wallMs);
      breakdown.push({ run_id: r.runId, wall_ms: round(r.wallMs), post_ms: round(r.postMs), ...p });
      sampleStdout ??= r.detail.steps.find((st) => st.target_id !== null)?.stdout.trim();
      if (!r.ok) {
        log(`${label}: failures, e.g. ${JSON.stringify(r.detail.targets.filter((t) => t.status !== 'succeeded').slice(0, 3))}`);
        log(`${label}: server output (warnings and errors):\n${s.output()}`);
      }
      if (flags['trace-db']) {
        traces.push(await traceSnapshot(s, traceFile));
      }
      return { wallMs: r.wallMs, ok: r.ok, succeeded: r.succeeded, extra: p };
    },
    clientCpu: () => (server ? cpuOf(server.pid).ownMs : 0),
    dbCpu: () => backends(),
    async finish() {
      const s = server as Server;
      const memory = memoryOf(s.pid);
      return {
        peakRssMb: mb(memory.peakKb),
        details: {
          database: db,
          rss_before_runs_mb: mb(rssBeforeRunsKb),
          rss_after_runs_mb: mb(memory.rssKb),
          warmup_ms: round(warmupMs),
          sample_stdout: sampleStdout,
          runs: breakdown,
          ...(flags['trace-db'] ? { sql_per_run: summariseTraces(label, traces) } : {}),
        },
      };
    },
  };
}

/** Set-up and warm-up for all, then RUNS rounds, each running every contender once in rotating order. */
async function measure(contenders: Contender[], fleet: Fleet): Promise<Series[]> {
  for (const c of contenders) {
    await c.setup();
  }
  const series: Series[] = contenders.map((c) => ({ tool: c.tool, label: c.label, runsMs: [], medianMs: NaN, allSucceeded: true, succeeded: [], cpu: { client: [], sshd: [], db: [] }, load1: [] }));
  for (let round_ = 0; round_ < RUNS; round_++) {
    for (let k = 0; k < contenders.length; k++) {
      const index = (k + round_) % contenders.length;
      const c = contenders[index] as Contender;
      const s = series[index] as Series;
      const load = load1();
      const [client0, sshd0, db0] = [c.clientCpu(), fleetMs(fleet.sshdPids), await c.dbCpu()];
      const r = await c.run();
      // Let sshd reap the last sessions before reading its counters.
      await sleep(300);
      const [client1, sshd1, db1] = [c.clientCpu(), fleetMs(fleet.sshdPids), await c.dbCpu()];
      const cpu = { client: round(r.clientCpuMs ?? client1 - client0), sshd: round(sshd1 - sshd0), db: round(cpuDelta(db0, db1)) };
      log(`${c.label}: run ${round_ + 1}: ${round(r.wallMs)} ms, ${r.succeeded}/${N} succeeded · cpu ms ${JSON.stringify(cpu)} · load ${load}${r.extra ? ` · ${JSON.stringify(r.extra)}` : ''}`);
      s.runsMs.push(round(r.wallMs));
      s.succeeded.push(r.succeeded);
      s.allSucceeded &&= r.ok;
      s.cpu.client.push(cpu.client);
      s.cpu.sshd.push(cpu.sshd);
      s.cpu.db.push(cpu.db);
      s.load1.push(load);
    }
  }
  for (const [i, c] of contenders.entries()) {
    const s = series[i] as Series;
    s.medianMs = round(median(s.runsMs));
    Object.assign(s, await c.finish());
  }
  return series;
}

// ---------------------------------------------------------------- report

function machine() {
  // `ssh -V` answers on stderr.
  const version = (cmd: string, args: string[]) => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  };
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    openssh: version('ssh', ['-V']),
    kernel: version('uname', ['-sr']),
  };
}

/** The commit measured, and whether src/ had uncommitted changes. */
function source() {
  const git = (args: string[]) => spawnSync('git', args, { cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8' }).stdout?.trim() ?? '';
  return { commit: git(['rev-parse', '--short', 'HEAD']), src_modified: git(['status', '--porcelain', '--', 'src']) !== '' };
}

function table(series: Series[]): string {
  const cpu = (xs: number[]) => String(round(median(xs)));
  const rows = series.map((s) => [
    s.label,
    String(s.medianMs),
    s.runsMs.join(' '),
    s.allSucceeded ? 'yes' : `NO (${s.succeeded.join('/')})`,
    s.peakRssMb === undefined ? '' : `${s.peakRssMb} MB`,
    cpu(s.cpu.client),
    cpu(s.cpu.sshd),
    s.cpu.db.some((x) => x > 0) ? cpu(s.cpu.db) : '',
    s.load1.join(' '),
  ]);
  const header = ['tool', 'median ms', 'runs ms', `all ${N} ok`, 'server peak RSS', 'client CPU ms', 'sshd CPU ms', 'postgres CPU ms', 'load1 before runs'];
  const numeric = new Set([1, 5, 6, 7]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  const missing = WITH_TOOLS ? missingTools() : [];
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(' and ')}; install with: ${INSTALL_HINT} (or pass --no-tools)`);
  }
  execFileSync(SSHD, ['-V'], { stdio: 'ignore' });
  const workDir = mkdtempSync(join(tmpdir(), 'oc-bench-fanout-'));
  // sshd reads authorized_keys (inside) as the fleet user.
  chmodSync(workDir, 0o711);
  onCleanup('temp directory', () => rmSync(workDir, { recursive: true, force: true }));
  const fleetDir = join(workDir, 'fleet');
  mkdirSync(fleetDir);
  log(`bench:fanout: ${N} hosts, concurrency ${CONCURRENCY}, ${RUNS} rounds after a warm-up, databases ${DBS.join('+')}, KEX ${KEX}`);
  const fleet = await startFleet(fleetDir, N, log, { reexec: SSHD_REEXEC });
  onCleanup('sshd fleet', fleet.stop);

  const contenders: Contender[] = [];
  if (WITH_TOOLS) {
    contenders.push(toolContender(pssh(fleet, workDir, CONCURRENCY, COMMAND), 'parallel-ssh', `parallel-ssh -p ${CONCURRENCY}`));
    contenders.push(toolContender(ansible(fleet, workDir, CONCURRENCY, COMMAND), 'ansible', `ansible -m raw -f ${CONCURRENCY}`));
  }
  contenders.push(toolContender(ssh2Direct(fleet, workDir, CONCURRENCY, COMMAND), 'ssh2', `ssh2 direct, ${CONCURRENCY} in flight (floor)`));
  for (const db of DBS) {
    contenders.push(opsConductor(db, fleet, workDir));
  }
  const series = await measure(contenders, fleet);

  const psshMs = series.find((s) => s.tool === 'parallel-ssh')?.medianMs;
  const ansibleMs = series.find((s) => s.tool === 'ansible')?.medianMs;
  const ratios = series
    .filter((s) => s.tool === 'opsconductor')
    .map((s) => {
      const vsPssh = psshMs ? s.medianMs / psshMs : undefined;
      const vsAnsible = ansibleMs ? s.medianMs / ansibleMs : undefined;
      const met = vsPssh !== undefined && vsAnsible !== undefined ? s.allSucceeded && vsPssh <= TARGET.pssh && vsAnsible <= TARGET.ansible : undefined;
      return { label: s.label, opsconductor_over_pssh: vsPssh && Number(vsPssh.toFixed(3)), opsconductor_over_ansible: vsAnsible && Number(vsAnsible.toFixed(3)), target_met: met };
    });

  const date = new Date();
  const result = {
    benchmark: 'fanout',
    date: date.toISOString(),
    command: ['node --import tsx bench/fanout/run.ts', ...process.argv.slice(2)].join(' '),
    server_env: SERVER_ENV,
    targets: N,
    concurrency: CONCURRENCY,
    runs: RUNS,
    remote_command: COMMAND,
    kex: KEX,
    fleet_sshd: FLEET_SSHD,
    machine: machine(),
    source: source(),
    target: { opsconductor_over_pssh_max: TARGET.pssh, opsconductor_over_ansible_max: TARGET.ansible, all_hosts_succeed: true },
    series,
    ratios,
  };
  const out = flags.out ?? join(import.meta.dirname, `results-${date.toISOString().slice(0, 19).replace(/:/g, '')}-n${N}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);

  process.stdout.write(`\nfan-out: \`${COMMAND}\` on ${N} loopback SSH hosts, concurrency ${CONCURRENCY}, KEX ${KEX}, ${FLEET_SSHD}, median of ${RUNS} interleaved runs after a warm-up\n`);
  process.stdout.write(`machine: ${result.machine.cpus} × ${result.machine.cpu_model}, ${result.machine.memory_gb} GB, Node ${result.machine.node}, ${result.machine.openssh}\n`);
  process.stdout.write(`source: commit ${result.source.commit}${result.source.src_modified ? ' with uncommitted changes in src/' : ''}\n\n`);
  process.stdout.write(`${table(series)}\n\n`);
  for (const r of ratios) {
    const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(2));
    const verdict = r.target_met === undefined ? '' : r.target_met ? '  → target met' : '  → target NOT met';
    process.stdout.write(`${r.label}: opsconductor/pssh ${f(r.opsconductor_over_pssh)} (target ≤ ${TARGET.pssh}), opsconductor/ansible ${f(r.opsconductor_over_ansible)} (target ≤ ${TARGET.ansible})${verdict}\n`);
  }
  process.stdout.write(`\nresults: ${out}\n`);
}

let exitCode = 0;
try {
  await main();
} catch (e) {
  log(`bench:fanout failed: ${(e as Error).stack ?? String(e)}`);
  exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(exitCode);
