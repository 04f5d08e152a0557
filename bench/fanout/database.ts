/** A fresh PostgreSQL database for the OpsConductor contender, and the CPU of the backends serving it. */
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { cpuByPid } from './cpu.ts';

/** A created database: its URL, a CPU snapshot of its backends, and how to drop it. */
export interface BenchDatabase {
  url: string;
  backends: () => Promise<Map<number, number>>;
  drop: () => Promise<void>;
}

/** Creates `oc_bench_fanout_<random>` next to the maintenance database at `baseUrl`. */
export async function createDatabase(baseUrl: string): Promise<BenchDatabase> {
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
