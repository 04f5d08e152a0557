/**
 * Reading the `--trace-db` SQL tracer (trace-db.ts, preloaded into the server) from the benchmark:
 * a snapshot of its counts on demand, and their summary per run.
 */
import { existsSync, readFileSync } from 'node:fs';

import { type Server } from './server.ts';
import { median, round, sleep } from './util.ts';

/** The tracer's counts since its previous snapshot, per statement shape. */
export type TraceSnapshot = { seq: number; statements: Record<string, { count: number; ms: number }> };

/** Asks the server's SQL tracer for its counts since the last snapshot. */
export async function traceSnapshot(server: Server, file: string): Promise<TraceSnapshot> {
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

/** Statements per run (median over runs), per target (of `N`), and their summed in-flight time; logged and returned. */
export function summariseTraces(label: string, traces: TraceSnapshot[], N: number, log: (line: string) => void) {
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
