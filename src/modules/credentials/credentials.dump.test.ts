import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { sql } from 'kysely';

import { createTestDatabase, type TestDatabase, usesPostgres } from '../../../test/db.ts';
import { loadConfig } from '../../config.ts';
import { type Database, openDatabase } from '../../db/database.ts';
import { migrate } from '../../db/migrate.ts';
import { createDeps, type Deps } from '../../deps.ts';
import { createLogger } from '../../logging.ts';
import type { Actor } from '../../shared/roles.ts';

const SECRETS = {
  password: 'Pl41ntext-Password-Never-Stored',
  token: 'tok_Plaintext_Token_Never_Stored_0123456789',
  winrm: 'Winrm-Plaintext-Never-Stored-42',
};

function allFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? allFiles(path) : [path];
  });
}

async function storeSecrets(deps: Deps): Promise<void> {
  const actor: Actor = { id: 1, username: 'admin', role: 'admin', ip: '127.0.0.1', requestId: 'dump-test', tokenId: 'x', tokenExpiresAt: new Date(), sessionId: 's' };
  await deps.credentials.create(actor, { name: 'dump-password', type: 'password', username: 'ops', password: SECRETS.password });
  await deps.credentials.create(actor, { name: 'dump-token', type: 'api_token', token: SECRETS.token });
  await deps.credentials.create(actor, { name: 'dump-winrm', type: 'winrm', username: 'Administrator', password: SECRETS.winrm, domain: 'CORP' });
}

function assertNoSecret(bytes: Buffer, where: string): void {
  for (const [name, secret] of Object.entries(SECRETS)) {
    assert.equal(bytes.includes(Buffer.from(secret)), false, `${name} found in plain text in ${where}`);
  }
}

describe('secrets at rest: the raw database holds no plaintext', () => {
  const dirs: string[] = [];
  let testDb: TestDatabase | undefined;
  let database: Database | undefined;
  let deps: Deps;

  before(async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'oc-dump-'));
    dirs.push(dataDir);
    if (usesPostgres) {
      testDb = await createTestDatabase();
      database = testDb.database;
    } else {
      database = await openDatabase({ kind: 'pglite', dataDir: join(dataDir, 'db') });
      await migrate(database.db);
    }
    const config = loadConfig({ OPSCONDUCTOR_DATA_DIR: dataDir, OPSCONDUCTOR_LOG_LEVEL: 'silent' });
    deps = await createDeps(config, { logger: createLogger('silent'), database, migrate: false, queue: false });
    await storeSecrets(deps);
  });
  after(async () => {
    await (testDb ? testDb.drop() : database?.close());
    dirs.forEach((d) => rmSync(d, { recursive: true, force: true }));
  });

  test('the stored secrets are still usable in-process', async () => {
    const rows = await deps.db.selectFrom('credentials').select(['id', 'name']).execute();
    const token = rows.find((r) => r.name === 'dump-token');
    assert.ok(token);
    assert.equal((await deps.credentials.resolve(token.id)).token, SECRETS.token);
  });

  if (usesPostgres) {
    test('pg_dump of the database contains no secret', () => {
      const dump = execFileSync('pg_dump', ['--data-only', testDb?.url as string], { maxBuffer: 64 * 1024 * 1024 });
      assert.ok(dump.includes(Buffer.from('dump-winrm')), 'the dump does contain the credentials table');
      assertNoSecret(dump, 'pg_dump');
    });
  } else {
    test('the PGlite data files on disk contain no secret', async () => {
      await sql`checkpoint`.execute(deps.db);
      const files = allFiles(join(dirs[0] as string, 'db'));
      const all = Buffer.concat(files.map((f) => readFileSync(f)));
      assert.ok(all.includes(Buffer.from('dump-winrm')), 'the data files do contain the credentials rows');
      assertNoSecret(all, 'the data directory');
    });
  }
});
