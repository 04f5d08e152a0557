/**
 * Opens the database: PostgreSQL through a `pg` pool when a URL is configured, otherwise embedded
 * PGlite in the data directory under an exclusive lock. Both are exposed through one Kysely handle
 * and one raw `executeSql` (used by pg-boss), so the rest of the code has a single SQL dialect.
 */
import { join } from 'node:path';

import { PGlite } from '@electric-sql/pglite';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

import { lockDataDir } from './data-dir-lock.ts';
import { PgliteDialect, runOnPglite } from './pglite-dialect.ts';
import type { Db } from './schema.ts';

/** What kind of server backs the database. */
export type DatabaseKind = 'postgres' | 'pglite';

/** An open database with its raw access paths. */
export interface Database {
  kind: DatabaseKind;
  db: Db;
  /** Raw SQL for libraries that bring their own (pg-boss); multi-statement when `values` is empty. */
  executeSql(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  /** A short round trip, for health checks. */
  ping(): Promise<void>;
  /** LISTEN on `channel`; `onPayload` gets every NOTIFY payload. Returns the unlisten function. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/** How to open the database. */
export type DatabaseOptions =
  | { kind: 'postgres'; url: string; poolMax: number; onError?: (e: Error) => void }
  | { kind: 'pglite'; dataDir?: string; lock?: boolean };

/** Opens a database as described by `options`. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  return options.kind === 'postgres' ? openPostgres(options) : openPglite(options);
}

function openPostgres(options: { url: string; poolMax: number; onError?: (e: Error) => void }): Database {
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolMax });
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', (e) => options.onError?.(e));
  const db: Db = new Kysely({ dialect: new PostgresDialect({ pool }) });
  const listener = createPgListener(options.url, options.onError);
  return {
    kind: 'postgres',
    db,
    executeSql: (text, values) => pool.query(text, values),
    ping: async () => void (await pool.query('select 1')),
    listen: listener.listen,
    close: async () => {
      await listener.close();
      await db.destroy();
    },
  };
}

/** One dedicated connection per process for LISTEN, opened on first use. */
function createPgListener(url: string, onError?: (e: Error) => void) {
  const handlers = new Map<string, Set<(payload: string) => void>>();
  let client: Promise<pg.Client> | undefined;
  const connect = () =>
    (client ??= (async () => {
      const c = new pg.Client({ connectionString: url });
      c.on('error', (e) => onError?.(e));
      c.on('notification', (n) => handlers.get(n.channel)?.forEach((h) => h(n.payload ?? '')));
      await c.connect();
      return c;
    })());
  return {
    async listen(channel: string, onPayload: (payload: string) => void) {
      const c = await connect();
      const set = handlers.get(channel) ?? new Set();
      if (set.size === 0) {
        await c.query(`listen "${channel.replace(/"/g, '')}"`);
      }
      set.add(onPayload);
      handlers.set(channel, set);
      return async () => {
        set.delete(onPayload);
      };
    },
    async close() {
      if (client) {
        await (await client).end();
      }
    },
  };
}

async function openPglite(options: { dataDir?: string; lock?: boolean }): Promise<Database> {
  const unlock = options.dataDir && options.lock !== false ? lockDataDir(options.dataDir) : undefined;
  try {
    const pglite = await PGlite.create(options.dataDir ? join(options.dataDir, 'pgdata') : undefined);
    const db: Db = new Kysely({ dialect: new PgliteDialect(pglite) });
    return {
      kind: 'pglite',
      db,
      executeSql: (text, values) => runOnPglite(pglite, undefined, text, values ?? []),
      ping: async () => void (await pglite.query('select 1')),
      listen: async (channel, onPayload) => {
        const unlisten = await pglite.listen(channel, onPayload);
        return async () => unlisten();
      },
      close: async () => {
        await db.destroy();
        await pglite.close();
        unlock?.();
      },
    };
  } catch (e) {
    unlock?.();
    throw e;
  }
}
