import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { buildApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { openDatabase } from '../db/database.ts';
import { createDeps, type Deps } from '../deps.ts';
import { createLogger } from '../logging.ts';
import type { App } from './types.ts';

describe('health with the database down', () => {
  let deps: Deps;
  let app: App;
  before(async () => {
    // A PostgreSQL URL nothing listens on: the pool connects lazily, so start-up succeeds.
    const config = loadConfig({ OPSCONDUCTOR_JWT_SECRET: 'x'.repeat(40), OPSCONDUCTOR_LOG_LEVEL: 'silent' });
    const database = await openDatabase({ kind: 'postgres', url: 'postgres://nobody@127.0.0.1:1/none', poolMax: 1 });
    deps = await createDeps(config, { logger: createLogger('silent'), database, migrate: false, queue: false });
    app = await buildApp(deps, { name: 'users', services: ['users'] });
  });
  after(async () => {
    await app.close();
    await deps.database.close();
  });

  test('answers 503 unhealthy naming the failed check', async () => {
    const res = await app.inject({ method: 'GET', url: '/health' });
    assert.equal(res.statusCode, 503);
    const body = res.json();
    assert.equal(body.service, 'users');
    assert.equal(body.status, 'unhealthy');
    assert.equal(body.checks[0].name, 'database');
    assert.equal(body.checks[0].status, 'unhealthy');
  });
});
