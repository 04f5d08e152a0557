/**
 * What the fan-out benchmark measures: a contender (something that fans the command out over the
 * fleet), its series of results, and the external tools (parallel-ssh, Ansible, the ssh2 floor)
 * wrapped as contenders.
 */
import { reapedChildrenMs } from './cpu.ts';
import { type Settings } from './settings.ts';
import { type Tool } from './tools.ts';
import { round } from './util.ts';

/** What the contenders and the measurement share: the settings, the log, clean-up and the deadline. */
export interface BenchContext {
  settings: Settings;
  log: (line: string) => void;
  /** Registers `fn` to run at the end (last registered runs first), whatever happens. */
  onCleanup: (what: string, fn: () => Promise<void> | void) => void;
  /** Time left before --timeout-s (at least a second). */
  remainingMs: () => number;
}

/** One timed run as a contender reports it. */
export interface RunOutcome {
  wallMs: number;
  ok: boolean;
  succeeded: number;
  /** CPU the contender measured itself; otherwise its counter's delta is used. */
  clientCpuMs?: number;
  extra?: Record<string, unknown>;
}

/** Something that fans the command out over the fleet. */
export interface Contender {
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
export interface Series {
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

/** The database CPU snapshot of a contender without database backends: empty. */
export const noDb = () => Promise.resolve(new Map<number, number>());

/** A comparison tool (tools.ts) as a contender; its stop, if any, is registered for clean-up. */
export function toolContender(ctx: BenchContext, tool: Tool, contenderTool: Contender['tool'], label: string): Contender {
  const { log, remainingMs } = ctx;
  const N = ctx.settings.targets;
  if (tool.stop) {
    ctx.onCleanup(label, tool.stop);
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
