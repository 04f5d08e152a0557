/** End-to-end test of the real `opsconductor serve --services users` on PostgreSQL (only with a test PostgreSQL URL). */
import { callPort } from '../../test/procs.ts';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { databaseUrl, TEST_PG_URL } from '../../test/db.ts';
import { SERVICE_PORT_OFFSETS } from '../services.ts';
import { type Cli, type ErrorBody, freeBasePort, type HealthBody, isRefused, killCli, removeTempDirs, spawnCli, tempDir, waitForHealth } from './cli.fixtures.ts';

describe('opsconductor CLI (real processes)', { concurrency: 2 }, () => {
  after(removeTempDirs);

  if (TEST_PG_URL) {
    describe('serve --services users on PostgreSQL', { concurrency: false }, () => {
      const dbName = `t_cli_${randomBytes(6).toString('hex')}`;
      let admin: pg.Client | undefined;
      let serve: Cli | undefined;
      let port: number;
      let dataDir: string;
      before(async () => {
        admin = new pg.Client({ connectionString: TEST_PG_URL });
        await admin.connect();
        await admin.query(`create database ${dbName}`);
        port = await freeBasePort();
        dataDir = tempDir();
        serve = spawnCli(['serve', '--services', 'users', '--port', String(port), '--database-url', databaseUrl(dbName)], {
          OPSCONDUCTOR_ADMIN_PASSWORD: 'cli-test-admin-password-1',
          // With a database URL there is no generated DATA_DIR/master.key: the key must be given.
          OPSCONDUCTOR_MASTER_KEY: randomBytes(32).toString('base64'),
          OPSCONDUCTOR_DATA_DIR: dataDir,
        });
        await waitForHealth(serve, port);
      });
      after(async () => {
        await killCli(serve);
        await admin?.query(`drop database if exists ${dbName} with (force)`);
        await admin?.end();
      });

      test('serves only the users routes, on PostgreSQL, without an embedded database', async () => {
        const health = await callPort<HealthBody>(port, '/health');
        assert.equal(health.body.checks[0]?.message, 'postgres reachable');
        const users = await callPort<ErrorBody>(port, '/users');
        assert.equal(users.status, 401);
        assert.equal(users.body.error.code, 'auth_error');
        const login = await callPort(port, '/auth/login', { method: 'POST', json: { username: 'admin', password: 'cli-test-admin-password-1' } });
        assert.equal(login.status, 404);
        // serve has no service ports.
        await assert.rejects(callPort(port + SERVICE_PORT_OFFSETS.users, '/health'), isRefused);
        // No embedded database was opened.
        assert.ok(!existsSync(join(dataDir, 'pgdata')) && !existsSync(join(dataDir, 'opsconductor.lock')), readdirSync(dataDir).join());
      });
    });
  }
});
