import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { credentialsApp } from './credentials.fixtures.ts';

describe('credentials', () => {
  const app = credentialsApp();
  const { call, put, get, del, create, secret } = app;

  test('deleting a credential a target uses is a 409 naming the target; force detaches it', async () => {
    const { ctx, m } = app;
    const cred = await create({ type: 'ssh', username: 'deploy', private_key: m.rsaPem.privateKey });
    const targetRes = await call({
      method: 'POST',
      url: '/targets',
      token: ctx.adminToken,
      payload: { name: unique('host'), host: '127.0.0.1', os_type: 'linux', protocol: 'ssh', credential_id: cred.id },
    });
    assert.equal(targetRes.statusCode, 200, targetRes.body);
    const targetId = targetRes.json().id as number;
    assert.equal(targetRes.json().credential_id, cred.id);

    const blocked = await del(cred.id);
    assertError(blocked, 409, 'conflict');
    assert.deepEqual(blocked.json().error.details.target_ids, [targetId]);
    assert.equal((await get(cred.id)).statusCode, 200, 'still there');
    assertError(await del(cred.id, '?force=maybe'), 400, 'validation_error', 'force');

    const forced = await del(cred.id, '?force=true');
    assert.equal(forced.statusCode, 200, forced.body);
    assert.equal(typeof forced.json().message, 'string');
    assertError(await get(cred.id), 404, 'not_found');
    const target = await call({ method: 'GET', url: `/targets/${targetId}`, token: ctx.adminToken });
    assert.equal(target.statusCode, 200, 'the target still exists');
    assert.equal(target.json().credential_id, null);
    await assert.rejects(ctx.deps.credentials.resolve(cred.id), /not found/);
  });

  test('an unused credential is deleted outright', async () => {
    const cred = await create({ type: 'api_token', token: secret('tok-del') });
    const res = await del(cred.id);
    assert.equal(res.statusCode, 200, res.body);
    assertError(await get(cred.id), 404, 'not_found');
    assertError(await del(cred.id), 404, 'not_found');
  });

  test('create, update and delete are audited with metadata only', async () => {
    const { ctx } = app;
    const token = secret('tok-audit');
    const cred = await create({ type: 'api_token', token, username: 'bot' });
    const newToken = secret('tok-audit2');
    assert.equal((await put(cred.id, { token: newToken, description: 'rotated' })).statusCode, 200);
    assert.equal((await del(cred.id)).statusCode, 200);

    const entry = async (action: string) => {
      const res = await call({ method: 'GET', url: `/audit?action=${action}&limit=200`, token: ctx.adminToken });
      assert.equal(res.statusCode, 200, res.body);
      const found = res.json().entries.filter((e: { resource_id: string | null }) => e.resource_id === String(cred.id));
      assert.equal(found.length, 1, `${action}: ${res.body}`);
      return found[0];
    };
    const created = await entry('credential.create');
    assert.equal(created.resource_type, 'credential');
    assert.equal(created.actor_username, 'admin');
    assert.equal(created.details.name, cred.name);
    const updated = await entry('credential.update');
    assert.deepEqual(updated.details.secret_fields_changed, ['token']);
    assert.deepEqual(updated.details.fields, ['description']);
    const deleted = await entry('credential.delete');
    assert.equal(deleted.details.name, cred.name);
    for (const e of [created, updated, deleted]) {
      const text = JSON.stringify(e);
      assert.equal(text.includes(token), false);
      assert.equal(text.includes(newToken), false);
    }
  });
});
