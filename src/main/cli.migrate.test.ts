/** End-to-end tests of the real `opsconductor migrate` and `admin reset-password` on a fresh data directory. */
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { removeTempDirs, runCli, tempDir } from './cli.fixtures.ts';

describe('opsconductor CLI (real processes)', { concurrency: 2 }, () => {
  after(removeTempDirs);

  describe('migrate on a fresh data directory', { concurrency: false }, () => {
    let dataDir: string;
    before(() => {
      dataDir = tempDir();
    });

    test('migrate exits 0, creates the database and releases the lock', async () => {
      const res = await runCli(['migrate'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /database schema is up to date/);
      const files = readdirSync(dataDir);
      assert.ok(files.includes('pgdata'), files.join());
      assert.ok(!files.includes('opsconductor.lock'), 'lock released');
      assert.ok(!files.includes('initial-admin-password'), 'migrate creates no user');
    });

    test('admin reset-password before the first start creates admin with that password; other users stay unknown', async () => {
      const unknown = await runCli(['admin', 'reset-password', 'nobody'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      assert.equal(unknown.code, 2, unknown.stderr);
      assert.match(unknown.stderr, /^opsconductor: User nobody not found\n$/);
      const res = await runCli(['admin', 'reset-password', 'admin'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /New password of admin: \S{12,}/);
    });
  });
});
