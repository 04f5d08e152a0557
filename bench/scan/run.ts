/**
 * Scan benchmark (issue #8): OpsConductor's built-in TCP connect scanner against `nmap -sT -T4` on
 * 127.0.0.0/24, with the fan-out benchmark's sshd fleet up so some hosts have an open port.
 *
 *   node --import tsx bench/scan/run.ts [--runs 3] [--fleet 40] [--passes both|default|wide]
 *        [--concurrency C] [--timeout-ms T] [--retries R] [--no-floor] [--timeout-s 900] [--out FILE]
 *
 * Pass "default": hosts .1–.254 × the discovery default ports (22, 80, 443, 3389, 5985, 5986).
 * Pass "wide": the same hosts × ports 1–1024 plus the fleet's port. Each pass warms every
 * contender up once, then runs K rounds, each running every contender once in rotating order.
 * Reported per pass: median wall time, the ratio OpsConductor/nmap, and whether every run found
 * the same open host:port pairs as nmap (differences are printed). OpsConductor's identification
 * of what it found is timed apart, since nmap -sT identifies nothing.
 *
 * Needs nmap (`apt-get install -y nmap`; exits 2 with that hint without it) and what the fleet
 * needs (sshd, root or the user octest). Writes bench/scan/results-<date>.json. Everything it
 * starts is stopped, and its temp directory removed, on success, failure, --timeout-s or Ctrl-C.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { DEFAULT_ALLOW, DEFAULT_MAX_ADDRESSES, parseNetworkRange } from '../../src/discovery/ranges.ts';
import type { OpenPort, ScanOptions } from '../../src/discovery/scanner.ts';
import { load1 } from '../fanout/cpu.ts';
import { startFleet } from '../fanout/fleet.ts';
import { type Contender, nmap, nodeFloor, opsConductor, type Pass } from './contenders.ts';
import { NMAP_INSTALL_HINT, nmapArgs, nmapVersion, portSpec } from './nmap.ts';
import { cleanupStack, guardCleanup } from '../guard.ts';

/** The discovery default ports (`DEFAULT_PORTS` in src/modules/discovery), as issue #8 lists them. */
const DEFAULT_PORTS = [22, 80, 443, 3389, 5985, 5986];
const RANGE = '127.0.0.0/24';
/** Concurrency of the floor when --concurrency is not given: the scanner's default. */
const SCANNER_DEFAULT_CONCURRENCY = 512;

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    fleet: { type: 'string', default: '40' },
    passes: { type: 'string', default: 'both' },
    concurrency: { type: 'string' },
    'timeout-ms': { type: 'string' },
    retries: { type: 'string' },
    'no-floor': { type: 'boolean', default: false },
    'timeout-s': { type: 'string', default: '900' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

function usage(message?: string): never {
  if (message) {
    process.stderr.write(`bench:scan: ${message}\n`);
  }
  process.stderr.write(
    'usage: npm run bench:scan -- [--runs 3] [--fleet 40] [--passes both|default|wide] [--concurrency C] [--timeout-ms T]\n' +
      '         [--retries R] [--no-floor] [--timeout-s 900] [--out FILE]\n',
  );
  process.exit(message ? 2 : 0);
}

function wholeNumber(name: string, value: string | undefined, min: number, max: number): number {
  if (!value || !/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    usage(`--${name} must be a whole number from ${min} to ${max}`);
  }
  return Number(value);
}
const optional = (name: string, value: string | undefined, min: number, max: number) => (value === undefined ? undefined : wholeNumber(name, value, min, max));

if (flags.help) {
  usage();
}
const RUNS = wholeNumber('runs', flags.runs, 1, 20);
const FLEET = wholeNumber('fleet', flags.fleet, 1, 254);
const TIMEOUT_MS = wholeNumber('timeout-s', flags['timeout-s'], 1, 24 * 3600) * 1000;
const PASSES = ({ both: ['default', 'wide'], default: ['default'], wide: ['wide'] } as Record<string, Array<Pass['name']>>)[flags.passes ?? ''] ?? usage('--passes must be both, default or wide');
/** Only what was asked for is passed: otherwise the scanner runs on its own defaults. */
const SCAN_OPTIONS: ScanOptions = Object.fromEntries(
  Object.entries({
    concurrency: optional('concurrency', flags.concurrency, 1, 65_536),
    timeoutMs: optional('timeout-ms', flags['timeout-ms'], 1, 60_000),
    retries: optional('retries', flags.retries, 0, 10),
  }).filter(([, v]) => v !== undefined),
);

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 23)}] ${line}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? NaN : s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};
const round = (x: number) => Math.round(x);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- cleanup, deadline, signals

/** Aborted on clean-up: stops an in-process scan and kills a running nmap. */
const stopAll = new AbortController();
const stack = cleanupStack(log);
/** Registers `fn` to run at the end (last registered runs first), whatever happens. */
const onCleanup = stack.onCleanup;
function cleanup(): Promise<void> {
  stopAll.abort();
  return stack.cleanup();
}

const watchdog = guardCleanup('bench:scan', TIMEOUT_MS, cleanup, log);

// ---------------------------------------------------------------- measuring

/** Results of one contender in one pass. */
interface Series {
  tool: Contender['tool'];
  label: string;
  warmupMs: number;
  runsMs: number[];
  medianMs: number;
  cpuMs: number[];
  /** Open pairs found in each run. */
  openCounts: number[];
  /** Whether every run found exactly nmap's pairs (nmap itself: whether its runs agreed with each other). */
  sameAsNmap: boolean;
  /** Pairs found by one side only, over all runs. */
  differences: { onlyThis: string[]; onlyNmap: string[] };
  load1: number[];
  extras: Array<Record<string, unknown>>;
}

const key = (o: OpenPort) => `${o.host}:${o.port}`;

/** Pairs in `a` and not in `b`. */
const minus = (a: Set<string>, b: Set<string>) => [...a].filter((k) => !b.has(k));

/** Warm-up, then RUNS rounds running every contender once in rotating order; every run's pairs compared with nmap's first timed run. */
async function measurePass(pass: Pass, contenders: Contender[]): Promise<{ series: Series[]; nmapPairs: string[] }> {
  const series: Series[] = [];
  for (const c of contenders) {
    const warm = await c.run(pass);
    log(`${pass.name}: ${c.label}: warm-up ${round(warm.wallMs)} ms, ${warm.open.length} open`);
    series.push({ tool: c.tool, label: c.label, warmupMs: round(warm.wallMs), runsMs: [], medianMs: NaN, cpuMs: [], openCounts: [], sameAsNmap: true, differences: { onlyThis: [], onlyNmap: [] }, load1: [], extras: [] });
  }
  const found: Array<Array<Set<string>>> = contenders.map(() => []);
  for (let r = 0; r < RUNS; r++) {
    for (let k = 0; k < contenders.length; k++) {
      const index = (k + r) % contenders.length;
      const [c, s] = [contenders[index] as Contender, series[index] as Series];
      const load = load1();
      const run = await c.run(pass);
      log(`${pass.name}: ${c.label}: run ${r + 1}: ${round(run.wallMs)} ms, cpu ${round(run.cpuMs)} ms, ${run.open.length} open · load ${load}${run.extra ? ` · ${JSON.stringify(run.extra)}` : ''}`);
      s.runsMs.push(round(run.wallMs));
      s.cpuMs.push(round(run.cpuMs));
      s.openCounts.push(run.open.length);
      s.load1.push(load);
      s.extras.push(run.extra ?? {});
      (found[index] as Array<Set<string>>).push(new Set(run.open.map(key)));
      // Let the loopback settle (sockets of the open pairs in TIME_WAIT, sshd reaping) before the next contender.
      await sleep(200);
    }
  }
  const nmapIndex = contenders.findIndex((c) => c.tool === 'nmap');
  const reference = found[nmapIndex]?.[0] ?? new Set<string>();
  for (const [i, s] of series.entries()) {
    s.medianMs = round(median(s.runsMs));
    const onlyThis = new Set((found[i] ?? []).flatMap((set) => minus(set, reference)));
    const onlyNmap = new Set((found[i] ?? []).flatMap((set) => minus(reference, set)));
    s.differences = { onlyThis: [...onlyThis].sort(), onlyNmap: [...onlyNmap].sort() };
    s.sameAsNmap = onlyThis.size === 0 && onlyNmap.size === 0;
  }
  return { series, nmapPairs: [...reference].sort() };
}

// ---------------------------------------------------------------- report

function machine() {
  return {
    cpus: cpus().length,
    cpu_model: cpus()[0]?.model ?? 'unknown',
    memory_gb: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    nmap: nmapVersion(),
    kernel: spawnSync('uname', ['-sr'], { encoding: 'utf8' }).stdout.trim(),
  };
}

/** The commit measured, and whether src/discovery had uncommitted changes. */
function source() {
  const git = (args: string[]) => spawnSync('git', args, { cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8' }).stdout?.trim() ?? '';
  return { commit: git(['rev-parse', '--short', 'HEAD']), src_discovery_modified: git(['status', '--porcelain', '--', 'src/discovery']) !== '' };
}

function table(series: Series[]): string {
  const rows = series.map((s) => {
    const identify = s.extras.map((e) => e.identify_ms).filter((x): x is number => typeof x === 'number');
    return [
      s.label,
      String(s.medianMs),
      s.runsMs.join(' '),
      String(round(median(s.cpuMs))),
      s.openCounts.join(' '),
      s.tool === 'nmap' ? (s.sameAsNmap ? '(reference)' : 'NO: its runs differ') : s.sameAsNmap ? 'yes' : 'NO',
      identify.length ? String(round(median(identify))) : '',
      s.load1.join(' '),
    ];
  });
  const header = ['tool', 'median ms', 'runs ms', 'cpu ms', 'open', 'same pairs as nmap', 'identify ms', 'load1 before runs'];
  const numeric = new Set([1, 3, 6]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The hosts a discovery job on RANGE scans, parsed as the job parses them. */
function rangeHosts(): string[] {
  const parsed = parseNetworkRange(RANGE, { allow: DEFAULT_ALLOW, maxAddresses: DEFAULT_MAX_ADDRESSES });
  if (parsed.errors.length > 0 || parsed.count !== 254) {
    throw new Error(`${RANGE} parsed to ${parsed.count} hosts (${JSON.stringify(parsed.errors)}), expected .1–.254`);
  }
  return parsed.addresses;
}

async function main(): Promise<void> {
  const workDir = mkdtempSync(join(tmpdir(), 'oc-bench-scan-'));
  onCleanup('temp directory', () => rmSync(workDir, { recursive: true, force: true }));
  const fleetDir = join(workDir, 'fleet');
  mkdirSync(fleetDir);
  const fleet = await startFleet(fleetDir, FLEET, log, { reexec: false });
  onCleanup('sshd fleet', fleet.stop);

  const hosts = rangeHosts();
  const passes: Pass[] = PASSES.map((name) => ({
    name,
    range: RANGE,
    hosts,
    ports: name === 'default' ? DEFAULT_PORTS : [...Array.from({ length: 1024 }, (_, i) => i + 1), fleet.port],
  }));
  const contenders: Contender[] = [opsConductor(SCAN_OPTIONS, {}, stopAll.signal), nmap(stopAll.signal)];
  if (!flags['no-floor']) {
    contenders.push(nodeFloor(SCAN_OPTIONS.concurrency ?? SCANNER_DEFAULT_CONCURRENCY, stopAll.signal));
  }
  log(`bench:scan: ${RANGE}, passes ${PASSES.join('+')}, ${RUNS} rounds after a warm-up, scan options ${JSON.stringify(SCAN_OPTIONS)} (scanner defaults for the rest)`);

  const results = [];
  for (const pass of passes) {
    log(`${pass.name}: ${pass.hosts.length} hosts × ${pass.ports.length} ports = ${pass.hosts.length * pass.ports.length} pairs; nmap ${nmapArgs(pass.ports, pass.range).join(' ')}`);
    const { series, nmapPairs } = await measurePass(pass, contenders);
    const ours = series.find((s) => s.tool === 'opsconductor') as Series;
    const theirs = series.find((s) => s.tool === 'nmap') as Series;
    const ratio = Number((ours.medianMs / theirs.medianMs).toFixed(3));
    const identifyMs = round(median(ours.extras.map((e) => Number(e.identify_ms))));
    results.push({
      pass: pass.name,
      hosts: `${pass.hosts[0]}–${pass.hosts[pass.hosts.length - 1]} (${pass.hosts.length})`,
      ports: portSpec(pass.ports),
      pairs: pass.hosts.length * pass.ports.length,
      nmap_command: `nmap ${nmapArgs(pass.ports, pass.range).join(' ')}`,
      open_pairs: nmapPairs.length <= 300 ? nmapPairs : `${nmapPairs.length} pairs`,
      series,
      opsconductor_over_nmap: ratio,
      opsconductor_with_identify_over_nmap: Number(((ours.medianMs + identifyMs) / theirs.medianMs).toFixed(3)),
      same_pairs: ours.sameAsNmap,
      target_met: ours.sameAsNmap && ratio <= 1,
    });
  }

  const date = new Date();
  const result = {
    benchmark: 'scan',
    date: date.toISOString(),
    command: ['node --import tsx bench/scan/run.ts', ...process.argv.slice(2)].join(' '),
    range: RANGE,
    fleet: { hosts: `${fleet.hosts[0]}–${fleet.hosts[fleet.hosts.length - 1]} (${fleet.hosts.length})`, port: fleet.port },
    runs: RUNS,
    scan_options: SCAN_OPTIONS,
    machine: machine(),
    source: source(),
    target: { opsconductor_over_nmap_max: 1, same_pairs: true },
    passes: results,
  };
  const out = flags.out ?? join(import.meta.dirname, `results-${date.toISOString().slice(0, 19).replace(/:/g, '')}.json`);
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);

  const m = result.machine;
  process.stdout.write(`\nscan: ${RANGE}, fleet of ${FLEET} sshd hosts on port ${fleet.port}, median of ${RUNS} interleaved runs after a warm-up, scan options ${JSON.stringify(SCAN_OPTIONS)}\n`);
  process.stdout.write(`machine: ${m.cpus} × ${m.cpu_model}, ${m.memory_gb} GB, Node ${m.node}, nmap ${m.nmap}, ${m.kernel}\n`);
  process.stdout.write(`source: commit ${result.source.commit}${result.source.src_discovery_modified ? ' with uncommitted changes in src/discovery/' : ''}\n`);
  for (const [i, r] of results.entries()) {
    process.stdout.write(`\npass ${r.pass}: hosts ${r.hosts} × ports ${r.ports} = ${r.pairs} pairs; nmap scans ${RANGE} (also .0 and .255, left out of the comparison)\n\n`);
    process.stdout.write(`${table(r.series)}\n\n`);
    for (const s of r.series.filter((x) => !x.sameAsNmap)) {
      process.stdout.write(`  ${s.label} differs from nmap: only it found ${s.differences.onlyThis.join(' ') || 'nothing'}; only nmap found ${s.differences.onlyNmap.join(' ') || 'nothing'}\n`);
    }
    if (r.series.some((s) => s.extras.some((e) => e.src_parser_agrees === false))) {
      process.stdout.write('  src/discovery/nmap.ts parseNmapXml read different pairs from an nmap report than the benchmark did (see the JSON)\n');
    }
    const verdict = r.target_met ? 'target met' : 'target NOT met';
    process.stdout.write(`opsconductor/nmap ${r.opsconductor_over_nmap.toFixed(2)} (target ≤ 1, same pairs: ${r.same_pairs ? 'yes' : 'NO'}) → ${verdict}; with identification ${r.opsconductor_with_identify_over_nmap.toFixed(2)}\n`);
    if (i === results.length - 1) {
      process.stdout.write(`\nresults: ${out}\n`);
    }
  }
}

if (!nmapVersion()) {
  process.stderr.write(`bench:scan: nmap is not installed; install it with: ${NMAP_INSTALL_HINT}\n`);
  process.exit(2);
}
let exitCode = 0;
try {
  await main();
} catch (e) {
  // After Ctrl-C or the deadline, the aborted scan's error is expected: the signal handler exits.
  if (!stopAll.signal.aborted) {
    log(`bench:scan failed: ${(e as Error).stack ?? String(e)}`);
  }
  exitCode = 1;
} finally {
  await cleanup();
  clearTimeout(watchdog);
}
process.exit(exitCode);
