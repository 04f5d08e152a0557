/**
 * CPU accounting from /proc, so a run's cost can be split between the client (the tool, or the
 * OpsConductor server), the sshd fleet and the PostgreSQL backends. On a 2-core machine that
 * runs all three, the client's CPU per host decides who is faster.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';

const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim() || 100);

/** CPU of a process (all threads) and of its reaped descendants, in ms; zeros when it is gone. */
export function cpuOf(pid: number | 'self'): { ownMs: number; childrenMs: number } {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3; utime 14, stime 15, cutime 16, cstime 17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    const at = (n: number) => f[n - 3] ?? 0;
    return { ownMs: (at(14) + at(15)) * TICK_MS, childrenMs: (at(16) + at(17)) * TICK_MS };
  } catch {
    return { ownMs: 0, childrenMs: 0 };
  }
}

/** CPU of this process's finished children (a tool's whole process tree once it exited). */
export const reapedChildrenMs = (): number => cpuOf('self').childrenMs;

/** CPU of the sshd listeners and every connection they have reaped. */
export const fleetMs = (pids: number[]): number => pids.reduce((sum, pid) => sum + cpuOf(pid).ownMs + cpuOf(pid).childrenMs, 0);

/** 1-minute load average (other work on the machine skews wall times). */
export const load1 = (): number => Number((loadavg()[0] ?? 0).toFixed(2));

/** A CPU snapshot of a set of processes whose members may change (database backends). */
export function cpuByPid(pids: number[]): Map<number, number> {
  return new Map(pids.map((pid) => [pid, cpuOf(pid).ownMs]));
}

/** CPU used between two snapshots; backends that appeared count whole, vanished ones are lost. */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let sum = 0;
  for (const [pid, ms] of after) {
    sum += ms - (before.get(pid) ?? 0);
  }
  return sum;
}
