/**
 * The fan-out benchmark's results: the ratios against the target, the JSON written to
 * results-<date>-n<N>.json (with the machine and the commit measured), and the summary on stdout.
 */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';

import { type Series } from './contenders.ts';
import { KEX } from './fleet.ts';
import { COMMAND, type Settings, TARGET } from './settings.ts';
import { median, round } from './util.ts';

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

function table(series: Series[], N: number): string {
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

/** Each OpsConductor series over parallel-ssh's and Ansible's medians, and whether the target is met. */
function ratios(series: Series[]) {
  const psshMs = series.find((s) => s.tool === 'parallel-ssh')?.medianMs;
  const ansibleMs = series.find((s) => s.tool === 'ansible')?.medianMs;
  return series
    .filter((s) => s.tool === 'opsconductor')
    .map((s) => {
      const vsPssh = psshMs ? s.medianMs / psshMs : undefined;
      const vsAnsible = ansibleMs ? s.medianMs / ansibleMs : undefined;
      const met = vsPssh !== undefined && vsAnsible !== undefined ? s.allSucceeded && vsPssh <= TARGET.pssh && vsAnsible <= TARGET.ansible : undefined;
      return { label: s.label, opsconductor_over_pssh: vsPssh && Number(vsPssh.toFixed(3)), opsconductor_over_ansible: vsAnsible && Number(vsAnsible.toFixed(3)), target_met: met };
    });
}

/** The results JSON of one invocation. */
export type Result = ReturnType<typeof results>;

/** The results of one invocation at `date`, as written to the JSON file. */
export function results(settings: Settings, series: Series[], date: Date) {
  return {
    benchmark: 'fanout',
    date: date.toISOString(),
    command: ['node --import tsx bench/fanout/run.ts', ...process.argv.slice(2)].join(' '),
    server_env: settings.serverEnv,
    targets: settings.targets,
    concurrency: settings.concurrency,
    runs: settings.runs,
    remote_command: COMMAND,
    kex: KEX,
    fleet_sshd: settings.fleetSshd,
    machine: machine(),
    source: source(),
    target: { opsconductor_over_pssh_max: TARGET.pssh, opsconductor_over_ansible_max: TARGET.ansible, all_hosts_succeed: true },
    series,
    ratios: ratios(series),
  };
}

/** Writes the summary of `result` (written to `out`) to stdout: the setting, the table, the ratios. */
export function printSummary(settings: Settings, result: Result, out: string): void {
  const { targets: N, concurrency: CONCURRENCY, runs: RUNS } = settings;
  process.stdout.write(`\nfan-out: \`${COMMAND}\` on ${N} loopback SSH hosts, concurrency ${CONCURRENCY}, KEX ${KEX}, ${settings.fleetSshd}, median of ${RUNS} interleaved runs after a warm-up\n`);
  process.stdout.write(`machine: ${result.machine.cpus} × ${result.machine.cpu_model}, ${result.machine.memory_gb} GB, Node ${result.machine.node}, ${result.machine.openssh}\n`);
  process.stdout.write(`source: commit ${result.source.commit}${result.source.src_modified ? ' with uncommitted changes in src/' : ''}\n\n`);
  process.stdout.write(`${table(result.series, N)}\n\n`);
  for (const r of result.ratios) {
    const f = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(2));
    const verdict = r.target_met === undefined ? '' : r.target_met ? '  → target met' : '  → target NOT met';
    process.stdout.write(`${r.label}: opsconductor/pssh ${f(r.opsconductor_over_pssh)} (target ≤ ${TARGET.pssh}), opsconductor/ansible ${f(r.opsconductor_over_ansible)} (target ≤ ${TARGET.ansible})${verdict}\n`);
  }
  process.stdout.write(`\nresults: ${out}\n`);
}
