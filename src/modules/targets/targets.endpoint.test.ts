import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { type Target, TARGET_KEYS, targetsFixture } from './targets.fixtures.ts';

describe('targets', () => {
  const { ctx, operator, setup, close, put, get, create, pinKey, auditFor } = targetsFixture();
  before(setup);
  after(close);

  describe('protocol moves and pinned host keys', () => {
    test('moving protocol without a port moves from the old default to the new default', async () => {
      const target = await create({ protocol: 'ssh' });
      const winrm = await put(target.id, { protocol: 'winrm' });
      assert.equal(winrm.statusCode, 200, winrm.body);
      assert.equal(winrm.json().port, 5985);
      const tls = await put(target.id, { use_tls: true });
      assert.equal(tls.json().port, 5986);
      const http = await put(target.id, { protocol: 'http' });
      assert.equal(http.json().port, 443);
      const plain = await put(target.id, { use_tls: false });
      assert.equal(plain.json().port, 80);
      const ssh = await put(target.id, { protocol: 'ssh' });
      assert.equal(ssh.statusCode, 200, ssh.body);
      assert.equal(ssh.json().port, 22);
    });

    test('a custom port is kept across a protocol move; an explicit port wins', async () => {
      const target = await create({ protocol: 'ssh', port: 2222 });
      const moved = await put(target.id, { protocol: 'winrm' });
      assert.equal(moved.json().port, 2222);
      const explicit = await put(target.id, { protocol: 'http', port: 8080 });
      assert.equal(explicit.json().port, 8080);
    });

    test('changing host, port or protocol forgets the pinned key and resets status', async () => {
      for (const change of [{ host: '10.9.9.9' }, { port: 2200 }, { protocol: 'winrm' }]) {
        const target = await create();
        await pinKey(target.id);
        const pinned = (await get(target.id)).json() as Target;
        assert.equal(pinned.host_key_fingerprint, 'SHA256:pinnedpinnedpinnedpinned');
        assert.equal(pinned.status, 'online');
        const res = await put(target.id, change);
        assert.equal(res.statusCode, 200, res.body);
        assert.equal(res.json().host_key_fingerprint, null, JSON.stringify(change));
        assert.equal(res.json().status, 'unknown', JSON.stringify(change));
        const audit = await auditFor('target.update', target.id);
        assert.equal(audit[0]?.details.endpoint_changed, true);
      }
    });

    test('other changes (and a no-op host rewrite) keep the pinned key and status', async () => {
      const target = await create({ host: '2001:db8::5' });
      await pinKey(target.id);
      const res = await put(target.id, { description: 'still the same machine', tags: ['x'], os_type: 'other', name: unique('renamed-') });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().host_key_fingerprint, 'SHA256:pinnedpinnedpinnedpinned');
      assert.equal(res.json().status, 'online');
      const same = await put(target.id, { host: '[2001:db8::5]', port: 22 });
      assert.equal(same.statusCode, 200, same.body);
      assert.equal(same.json().host_key_fingerprint, 'SHA256:pinnedpinnedpinnedpinned');
      assert.equal(same.json().status, 'online');
    });

    test('POST /targets/{id}/host-key/reset clears the fingerprint, resets status and is audited', async () => {
      const target = await create();
      await pinKey(target.id, 'SHA256:oldkeyoldkeyoldkey');
      const res = await ctx.request({ method: 'POST', url: `/targets/${target.id}/host-key/reset`, token: operator.token });
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json() as Target;
      assert.deepEqual(Object.keys(body).sort(), TARGET_KEYS);
      assert.equal(body.id, target.id);
      assert.equal(body.host_key_fingerprint, null);
      assert.equal(body.status, 'unknown');
      assert.equal((await get(target.id)).json().host_key_fingerprint, null);
      const audit = await auditFor('target.host_key_reset', target.id);
      assert.equal(audit.length, 1);
      assert.equal(audit[0]?.actor_id, operator.id);
      assert.equal(audit[0]?.details.previous_fingerprint, 'SHA256:oldkeyoldkeyoldkey');
    });
  });
});
