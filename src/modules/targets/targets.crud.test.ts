import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { type Target, TARGET_KEYS, targetsFixture } from './targets.fixtures.ts';

const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

describe('targets', () => {
  const { ctx, operator, viewer, setup, close, creds, post, put, get, list, create, auditFor } = targetsFixture();
  before(setup);
  after(close);

  describe('CRUD and response shape', () => {
    test('create returns the full target with defaults; GET returns the same', async () => {
      const name = unique('shape-');
      const res = await post({ name, host: 'web-1.example.com', os_type: 'linux', protocol: 'ssh' });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as Target;
      assert.deepEqual(Object.keys(body).sort(), TARGET_KEYS);
      assert.equal(typeof body.id, 'number');
      assert.ok(Number.isInteger(body.id) && body.id > 0);
      assert.equal(body.name, name);
      assert.equal(body.host, 'web-1.example.com');
      assert.equal(body.port, 22);
      assert.equal(body.os_type, 'linux');
      assert.equal(body.protocol, 'ssh');
      assert.equal(body.use_tls, false);
      assert.equal(body.credential_id, null);
      assert.deepEqual(body.tags, []);
      assert.equal(body.description, '');
      assert.equal(body.status, 'unknown');
      assert.equal(body.last_checked_at, null);
      assert.equal(body.response_time_ms, null);
      assert.equal(body.host_key_fingerprint, null);
      assert.deepEqual(body.group_ids, []);
      assert.match(body.created_at, ISO_UTC);
      assert.match(body.updated_at, ISO_UTC);

      const fetched = await get(body.id);
      assert.equal(fetched.statusCode, 200);
      assert.deepEqual(fetched.json(), body);
    });

    test('create keeps every given field', async () => {
      const body = await create({
        host: '192.168.1.20',
        os_type: 'windows',
        protocol: 'winrm',
        port: 15985,
        use_tls: true,
        credential_id: creds.winrm,
        tags: ['prod', 'dc:eu-1', 'role=db'],
        description: 'Primary DB, EU',
      });
      assert.equal(body.host, '192.168.1.20');
      assert.equal(body.os_type, 'windows');
      assert.equal(body.protocol, 'winrm');
      assert.equal(body.port, 15985);
      assert.equal(body.use_tls, true);
      assert.equal(body.credential_id, creds.winrm);
      assert.deepEqual(body.tags, ['prod', 'dc:eu-1', 'role=db']);
      assert.equal(body.description, 'Primary DB, EU');
    });

    test('PUT updates only the given fields and bumps updated_at', async () => {
      const before = await create({ tags: ['a'], description: 'old' });
      await new Promise((r) => setTimeout(r, 5));
      const res = await put(before.id, { description: 'new', tags: ['b', 'c'], os_type: 'unix' });
      assert.equal(res.statusCode, 200, res.body);
      const updated = res.json() as Target;
      assert.deepEqual(Object.keys(updated).sort(), TARGET_KEYS);
      assert.equal(updated.description, 'new');
      assert.deepEqual(updated.tags, ['b', 'c']);
      assert.equal(updated.os_type, 'unix');
      assert.equal(updated.name, before.name);
      assert.equal(updated.host, before.host);
      assert.equal(updated.port, before.port);
      assert.equal(updated.created_at, before.created_at);
      assert.ok(Date.parse(updated.updated_at) > Date.parse(before.updated_at), `${updated.updated_at} vs ${before.updated_at}`);
      assert.deepEqual((await get(before.id)).json(), updated);
    });

    test('PUT credential_id null detaches the credential', async () => {
      const target = await create({ credential_id: creds.ssh });
      assert.equal(target.credential_id, creds.ssh);
      const res = await put(target.id, { credential_id: null });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().credential_id, null);
    });

    test('DELETE removes the target; later reads are 404', async () => {
      const target = await create();
      const res = await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: ctx.adminToken });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual(res.json(), { message: 'Target deleted successfully' });
      assertError(await get(target.id), 404, 'not_found');
      assertError(await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: ctx.adminToken }), 404, 'not_found');
    });

    test('unknown ids are 404 on every /targets/{id} route; non-integer ids are 400', async () => {
      const missing = 2_000_000_000;
      assertError(await get(missing), 404, 'not_found');
      assertError(await put(missing, { description: 'x' }), 404, 'not_found');
      assertError(await ctx.request({ method: 'DELETE', url: `/targets/${missing}`, token: ctx.adminToken }), 404, 'not_found');
      assertError(await ctx.request({ method: 'POST', url: `/targets/${missing}/host-key/reset`, token: ctx.adminToken }), 404, 'not_found');
      assertError(await ctx.request({ method: 'GET', url: '/targets/abc', token: ctx.adminToken }), 400, 'validation_error', 'id');
    });

    test('create, update and delete are audited with the actor', async () => {
      const target = await create({}, operator.token);
      await put(target.id, { description: 'audited' }, operator.token);
      await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: operator.token });
      const created = await auditFor('target.create', target.id);
      assert.equal(created.length, 1);
      assert.equal(created[0]?.actor_id, operator.id);
      assert.equal(created[0]?.details.name, target.name);
      const updated = await auditFor('target.update', target.id);
      assert.equal(updated.length, 1);
      assert.deepEqual(updated[0]?.details.fields, ['description']);
      const deleted = await auditFor('target.delete', target.id);
      assert.equal(deleted.length, 1);
      assert.equal(deleted[0]?.actor_id, operator.id);
    });
  });

  describe('access', () => {
    test('viewers read (200) but every write is 403', async () => {
      const target = await create();
      assert.equal((await list('', viewer.token)).total >= 1, true);
      assert.equal((await get(target.id, viewer.token)).statusCode, 200);
      const writes: Array<{ method: 'POST' | 'PUT' | 'DELETE'; url: string; payload?: unknown; headers?: Record<string, string> }> = [
        { method: 'POST', url: '/targets', payload: { name: unique('vw-'), host: '10.0.0.1', os_type: 'linux', protocol: 'ssh' } },
        { method: 'PUT', url: `/targets/${target.id}`, payload: { description: 'viewer was here' } },
        { method: 'DELETE', url: `/targets/${target.id}` },
        { method: 'POST', url: `/targets/${target.id}/host-key/reset` },
        { method: 'POST', url: `/targets/${target.id}/test` },
        { method: 'POST', url: '/targets/import', payload: [{ name: unique('vw-'), host: '10.0.0.1', os_type: 'linux', protocol: 'ssh' }] },
      ];
      for (const write of writes) {
        const res = await ctx.request({ method: write.method, url: write.url, token: viewer.token, payload: write.payload as object | undefined });
        assertError(res, 403, 'permission_error');
      }
      const unchanged = (await get(target.id)).json() as Target;
      assert.deepEqual(unchanged, target);
    });

    test('operators create, update, reset and delete targets', async () => {
      const target = await create({}, operator.token);
      assert.equal((await put(target.id, { description: 'by operator' }, operator.token)).statusCode, 200);
      assert.equal((await ctx.request({ method: 'POST', url: `/targets/${target.id}/host-key/reset`, token: operator.token })).statusCode, 200);
      assert.equal((await ctx.request({ method: 'DELETE', url: `/targets/${target.id}`, token: operator.token })).statusCode, 200);
    });

    test('no token is a 401', async () => {
      assertError(await ctx.request({ method: 'GET', url: '/targets' }), 401, 'auth_error');
      assertError(await ctx.request({ method: 'POST', url: '/targets', payload: {} }), 401, 'auth_error');
    });
  });
});
