/**
 * A fresh database per test file: with OPSCONDUCTOR_TEST_DATABASE_URL, a PostgreSQL database
 * cloned from the migrated template the test runner prepared; otherwise an in-memory PGlite,
 * migrated here.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { openDatabase, type Database } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';

/** Name of the migrated template database (created by scripts/run-tests.mjs). */
export const TEMPLATE_DB = process.env.OPSCONDUCTOR_TEST_TEMPLATE ?? 'opsconductor_test_template';

/** The admin URL of the test PostgreSQL server, if tests run on PostgreSQL. */
export const TEST_PG_URL = process.env.OPSCONDUCTOR_TEST_DATABASE_URL || undefined;

/** True when this run uses a real PostgreSQL server. */
export const usesPostgres = TEST_PG_URL !== undefined;

/** URL of database `name` on the test server. */
export function databaseUrl(name: string): string {
  const url = new URL(TEST_PG_URL ?? 'postgres://localhost/');
  url.pathname = `/${name}`;
  return url.toString();
}

async function adminQuery(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_PG_URL });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A test database and how to get rid of it. */
export interface TestDatabase {
  database: Database;
  /** PostgreSQL URL of this database (undefined on PGlite). */
  url: string | undefined;
  drop(): Promise<void>;
}

/** Creates a migrated database for one test file. */
export async function createTestDatabase(): Promise<TestDatabase> {
  if (!usesPostgres) {
    const database = await openDatabase({ kind: 'pglite' });
    await migrate(database.db);
    return { database, url: undefined, drop: () => database.close() };
  }
  const name = `t_${randomBytes(6).toString('hex')}`;
  await adminQuery(`create database ${name} template ${TEMPLATE_DB}`);
  const url = databaseUrl(name);
  const database = await openDatabase({ kind: 'postgres', url, poolMax: 5 });
  return {
    database,
    url,
    drop: async () => {
      await database.close();
      await adminQuery(`drop database if exists ${name} with (force)`);
    },
  };
}
