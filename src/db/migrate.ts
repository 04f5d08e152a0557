/**
 * Forward-only numbered SQL migrations (`migrations/NNNN_name.sql`), each applied in its own
 * transaction under an advisory lock, so several processes starting at once apply each exactly once.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { sql } from 'kysely';

import type { Db } from './schema.ts';

const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Arbitrary constant shared by every OpsConductor process: "migrations in progress". */
const MIGRATION_LOCK_KEY = 7_446_001;

/** One migration file. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** The migrations shipped with this build, in order. */
export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number.parseInt(file.slice(0, 4), 10),
      name: file.slice(5, -4),
      sql: readFileSync(join(dir, file), 'utf8'),
    }));
}

/** Applies pending migrations; returns the versions applied now. */
export async function migrate(db: Db, migrations = listMigrations()): Promise<number[]> {
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await db.transaction().execute(async (tx) => {
      // Under the lock, so processes starting together never race on creating the table either.
      await sql`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`.execute(tx);
      await sql`create table if not exists schema_migrations (
        version integer primary key, name text not null, applied_at timestamptz not null default now())`.execute(tx);
      const existing = await sql<{ version: number }>`select version from schema_migrations where version = ${migration.version}`.execute(tx);
      if (existing.rows.length > 0) {
        return false;
      }
      await sql.raw(migration.sql).execute(tx);
      await sql`insert into schema_migrations (version, name) values (${migration.version}, ${migration.name})`.execute(tx);
      return true;
    });
    if (done) {
      applied.push(migration.version);
    }
  }
  return applied;
}
