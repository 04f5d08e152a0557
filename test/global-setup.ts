/** Prepares the migrated template database on PostgreSQL (run once by scripts/run-tests.mjs). */
import pg from 'pg';

import { openDatabase } from '../src/db/database.ts';
import { migrate } from '../src/db/migrate.ts';
import { databaseUrl, TEMPLATE_DB, TEST_PG_URL } from './db.ts';

if (TEST_PG_URL) {
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`update pg_database set datistemplate = false where datname = $1`, [TEMPLATE_DB]);
  await admin.query(`drop database if exists ${TEMPLATE_DB} with (force)`);
  await admin.query(`create database ${TEMPLATE_DB}`);
  const database = await openDatabase({ kind: 'postgres', url: databaseUrl(TEMPLATE_DB), poolMax: 1 });
  await migrate(database.db);
  await database.close();
  await admin.query(`update pg_database set datistemplate = true where datname = $1`, [TEMPLATE_DB]);
  await admin.end();
  process.stdout.write(`test template ${TEMPLATE_DB} migrated on PostgreSQL\n`);
} else {
  process.stdout.write('tests use embedded PGlite (set OPSCONDUCTOR_TEST_DATABASE_URL for PostgreSQL)\n');
}
