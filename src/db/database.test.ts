import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { sql } from 'kysely';

import { createTestDatabase, type TestDatabase } from '../../test/db.ts';
import { DataDirLockedError, lockDataDir } from './data-dir-lock.ts';
import { type Database, openDatabase } from './database.ts';
import { migrate } from './migrate.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PGlite transactions', () => {
  let database: Database;
  before(async () => {
    database = await openDatabase({ kind: 'pglite' });
    await database.executeSql('create table counter (n int not null); insert into counter values (0);');
  });
  after(() => database.close());

  test('concurrent transactions never interleave on the single connection', async () => {
    const bump = () =>
      database.db.transaction().execute(async (tx) => {
        const { rows } = await sql<{ n: number }>`select n from counter`.execute(tx);
        await sleep(20);
        await sql`update counter set n = ${(rows[0]?.n ?? 0) + 1}`.execute(tx);
      });
    await Promise.all([bump(), bump(), bump()]);
    const { rows } = await sql<{ n: number }>`select n from counter`.execute(database.db);
    assert.equal(rows[0]?.n, 3);
  });

  test('a throwing transaction rolls back and the connection stays usable', async () => {
    await assert.rejects(
      database.db.transaction().execute(async (tx) => {
        await sql`update counter set n = 100`.execute(tx);
        throw new Error('abort');
      }),
      /abort/,
    );
    const { rows } = await sql<{ n: number }>`select n from counter`.execute(database.db);
    assert.equal(rows[0]?.n, 3);
  });

  test('a failed statement inside a transaction rolls it back', async () => {
    await assert.rejects(
      database.db.transaction().execute(async (tx) => {
        await sql`update counter set n = 200`.execute(tx);
        await sql`select * from no_such_table`.execute(tx);
      }),
    );
    const { rows } = await sql<{ n: number }>`select n from counter`.execute(database.db);
    assert.equal(rows[0]?.n, 3);
  });

  test('a parameterised statement from outside a transaction waits for it, never runs inside it', async () => {
    let inside!: () => void;
    const started = new Promise<void>((resolve) => (inside = resolve));
    const failing = database.db.transaction().execute(async (tx) => {
      await sql`update counter set n = n + 1000`.execute(tx);
      inside();
      await sleep(50);
      throw new Error('roll back');
    });
    await started;
    await sql`update counter set n = n + ${5}`.execute(database.db);
    await assert.rejects(failing, /roll back/);
    const { rows } = await sql<{ n: number }>`select n from counter`.execute(database.db);
    assert.equal(rows[0]?.n, 8, 'the outside update survives the rollback: it ran after the transaction');
    await sql`update counter set n = ${3}`.execute(database.db);
  });

  test('parameters reach PGlite as node-postgres sends them to PostgreSQL', async () => {
    const at = new Date('2026-11-26T11:22:33.456Z');
    const { rows } = await sql<Record<string, unknown>>`
      select ${['a"b', 'c\\d', null, 'e,f']}::text[] as texts, ${[[1, 2], [3, 4]]}::int[] as grid, ${Buffer.from([0, 255, 16])}::bytea as bytes,
             ${at}::timestamptz as at, ${{ k: ['v', 1] }}::jsonb as doc, ${true}::boolean as yes, ${9007199254740993n}::bigint::text as big,
             ${null}::text as nothing`.execute(database.db);
    assert.deepEqual(rows[0], {
      texts: ['a"b', 'c\\d', null, 'e,f'],
      grid: [
        [1, 2],
        [3, 4],
      ],
      bytes: new Uint8Array([0, 255, 16]),
      at,
      doc: { k: ['v', 1] },
      yes: true,
      big: '9007199254740993',
      nothing: null,
    });
  });

  test('raw multi-statement SQL (the pg-boss path) runs whole', async () => {
    const result = await database.executeSql('create table t1 (x int); insert into t1 values (1), (2); select count(*)::int as c from t1;');
    assert.deepEqual(result.rows, [{ c: 2 }]);
    const withParams = await database.executeSql('select $1::int + 1 as v', [41]);
    assert.deepEqual(withParams.rows, [{ v: 42 }]);
  });
});

describe('data directory lock', () => {
  test('a second open of the same directory is refused with a clear message', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oc-lock-'));
    const first = await openDatabase({ kind: 'pglite', dataDir: dir });
    try {
      await assert.rejects(openDatabase({ kind: 'pglite', dataDir: dir }), (e: unknown) => {
        assert.ok(e instanceof DataDirLockedError);
        assert.match(e.message, /in use by another OpsConductor process/);
        return true;
      });
    } finally {
      await first.close();
    }
    // Released on close: the directory opens again and kept its data.
    const again = await openDatabase({ kind: 'pglite', dataDir: dir });
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a lock left by a dead process is taken over', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oc-lock-'));
    writeFileSync(join(dir, 'opsconductor.lock'), '999999999');
    const release = lockDataDir(dir);
    assert.throws(() => lockDataDir(dir), DataDirLockedError);
    release();
    lockDataDir(dir)();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a stale lock carrying our own pid (a restarted container) is taken over', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oc-lock-'));
    writeFileSync(join(dir, 'opsconductor.lock'), String(process.pid));
    const release = lockDataDir(dir);
    assert.equal(readFileSync(join(dir, 'opsconductor.lock'), 'utf8'), String(process.pid));
    assert.throws(() => lockDataDir(dir), DataDirLockedError, 'but our own live lock still holds');
    release();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a live lock of another process is never cleared', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oc-lock-'));
    writeFileSync(join(dir, 'opsconductor.lock'), String(process.ppid));
    assert.throws(() => lockDataDir(dir), DataDirLockedError);
    assert.equal(readFileSync(join(dir, 'opsconductor.lock'), 'utf8'), String(process.ppid));
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('migrations', () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await createTestDatabase();
  });
  after(() => testDb.drop());

  test('are idempotent: a second run applies nothing', async () => {
    assert.deepEqual(await migrate(testDb.database.db), []);
  });

  test('started concurrently by several processes, each applies exactly once', async () => {
    const migrations = [
      { version: 9001, name: 'a', sql: 'create table mig_a (x int); insert into mig_a values (1);' },
      { version: 9002, name: 'b', sql: 'insert into mig_a values (2);' },
    ];
    const others = testDb.url ? [await openDatabase({ kind: 'postgres', url: testDb.url, poolMax: 2 })] : [];
    try {
      const results = await Promise.all([migrate(testDb.database.db, migrations), ...others.map((o) => migrate(o.db, migrations))]);
      assert.deepEqual(results.flat().sort(), [9001, 9002]);
      const { rows } = await sql<{ x: number }>`select x from mig_a order by x`.execute(testDb.database.db);
      assert.deepEqual(rows.map((r) => r.x), [1, 2]);
    } finally {
      await Promise.all(others.map((o) => o.close()));
    }
  });
});
