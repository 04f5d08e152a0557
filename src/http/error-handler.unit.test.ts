import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { registerAjvFormats, TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';

import { ConflictError, NotFoundError } from '../errors.ts';
import { createLogger } from '../logging.ts';
import { createLogCapture } from '../../test/log-capture.ts';
import { registerAuth } from './auth.plugin.ts';
import { errorBody, handleError, toAppError } from './error-handler.ts';
import type { App } from './types.ts';

describe('error mapping', () => {
  test('domain errors keep their status, code, field and details', () => {
    const conflict = toAppError(new ConflictError('taken', 'email', { details: { field: 'email' } }));
    assert.equal(conflict.status, 409);
    assert.deepEqual(errorBody(conflict, 'r1'), { error: { code: 'conflict', message: 'taken', field: 'email', details: { field: 'email' } }, request_id: 'r1' });
    assert.equal(toAppError(new NotFoundError('nope')).status, 404);
  });

  test('unknown errors become a bare 500 that reveals nothing, while the cause is logged', async () => {
    const logs = createLogCapture();
    registerAjvFormats();
    const app = Fastify({ loggerInstance: createLogger('info', logs.stream) }) as unknown as App;
    app.setValidatorCompiler(TypeBoxValidatorCompiler);
    app.setErrorHandler(handleError);
    app.get('/boom', { config: { access: 'public' } }, async () => {
      throw new Error('relation "users" does not exist at SELECT password_hash FROM users');
    });
    const res = await app.inject({ method: 'GET', url: '/boom' });
    assert.equal(res.statusCode, 500);
    assert.deepEqual(res.json().error, { code: 'internal_error', message: 'Internal server error' });
    assert.doesNotMatch(res.body, /relation|password_hash|SELECT/);
    assert.match(logs.text(), /relation \\"users\\" does not exist/);
    await app.close();
  });

  test('a route that declares no access level cannot be registered', async () => {
    const app = Fastify() as unknown as App;
    registerAuth(app, async () => {
      throw new Error('unused');
    }, []);
    assert.throws(() => app.get('/open-by-mistake', async () => 'x'), /declares no config.access/);
    await app.close();
  });
});
