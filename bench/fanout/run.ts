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
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type BenchContext, type Contender, toolContender } from './contenders.ts';
import { type Fleet, KEX, SSHD, startFleet } from './fleet.ts';
import { measure } from './measure.ts';
import { opsConductor } from './opsconductor.ts';
import { printSummary, results } from './report.ts';
import { COMMAND, parseSettings } from './settings.ts';
import { ansible, INSTALL_HINT, missingTools, pssh, ssh2Direct } from './tools.ts';
import { log } from './util.ts';
import { cleanupStack, guardCleanup } from '../guard.ts';

// Modules: settings.ts (flags), contenders.ts (what is measured; the tools as contenders),
// opsconductor.ts (+ database.ts, sql-trace.ts), measure.ts (the rounds), report.ts (JSON, summary).

const settings = parseSettings(process.argv.slice(2));
const { onCleanup, cleanup } = cleanupStack(log);
const startedAt = Date.now();
const remainingMs = () => Math.max(1000, settings.timeoutMs - (Date.now() - startedAt));
const watchdog = guardCleanup('bench:fanout', settings.timeoutMs, cleanup, log);
const ctx: BenchContext = { settings, log, onCleanup, remainingMs };

/** Checks the tools, makes the temp directory (removed at clean-up) and starts the sshd fleet in it. */
async function startBench(): Promise<{ workDir: string; fleet: Fleet }> {
  const missing = settings.withTools ? missingTools() : [];
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
  const { targets: N, concurrency: CONCURRENCY, runs: RUNS } = settings;
  log(`bench:fanout: ${N} hosts, concurrency ${CONCURRENCY}, ${RUNS} rounds after a warm-up, databases ${settings.dbs.join('+')}, KEX ${KEX}`);
  const fleet = await startFleet(fleetDir, N, log, { reexec: settings.sshdReexec });
  onCleanup('sshd fleet', fleet.stop);
  return { workDir, fleet };
}

/** parallel-ssh and Ansible (unless --no-tools), the ssh2 floor, and OpsConductor on each database. */
function contenders(fleet: Fleet, workDir: string): Contender[] {
  const CONCURRENCY = settings.concurrency;
  const list: Contender[] = [];
  if (settings.withTools) {
    list.push(toolContender(ctx, pssh(fleet, workDir, CONCURRENCY, COMMAND), 'parallel-ssh', `parallel-ssh -p ${CONCURRENCY}`));
    list.push(toolContender(ctx, ansible(fleet, workDir, CONCURRENCY, COMMAND), 'ansible', `ansible -m raw -f ${CONCURRENCY}`));
  }
  list.push(toolContender(ctx, ssh2Direct(fleet, workDir, CONCURRENCY, COMMAND), 'ssh2', `ssh2 direct, ${CONCURRENCY} in flight (floor)`));
  for (const db of settings.dbs) {
    list.push(opsConductor(ctx, db, fleet, workDir));
  }
  return list;
}

async function main(): Promise<void> {
  const { workDir, fleet } = await startBench();
  const series = await measure(ctx, contenders(fleet, workDir), fleet);
  const date = new Date();
  const result = results(settings, series, date);
  const out = settings.out ?? join(import.meta.dirname, `results-${date.toISOString().slice(0, 19).replace(/:/g, '')}-n${settings.targets}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  printSummary(settings, result, out);
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
