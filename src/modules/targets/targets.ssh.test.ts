import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import ssh2 from 'ssh2';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { ed25519PrivateKey, freePort, SSH_TEST_PASSWORD, SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';

describe('POST /targets/{id}/test against a real OpenSSH server', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshd: Sshd;
  const credentials: Record<string, number> = {};

  const createCredential = async (payload: Record<string, unknown>) => {
    const res = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('cred'), ...payload } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().id as number;
  };
  const createTarget = async (credentialId: number, port = sshd.port) => {
    const res = await ctx.request({
      method: 'POST',
      url: '/targets',
      token: ctx.adminToken,
      payload: { name: unique('host'), host: '127.0.0.1', port, os_type: 'linux', protocol: 'ssh', credential_id: credentialId },
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().id as number;
  };
  const testTarget = (id: number) => ctx.request({ method: 'POST', url: `/targets/${id}/test`, token: ctx.adminToken });
  const getTarget = async (id: number) => (await ctx.request({ method: 'GET', url: `/targets/${id}`, token: ctx.adminToken })).json();

  before(async () => {
    sshd = await startSshd();
    ctx = await createTestContext();
    credentials.key = await createCredential({ type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey });
    credentials.password = await createCredential({ type: 'ssh', username: SSH_TEST_USER, password: SSH_TEST_PASSWORD });
    credentials.wrong = await createCredential({ type: 'password', username: SSH_TEST_USER, password: 'not-the-password-123' });
  });
  after(async () => {
    await ctx?.close();
    await sshd?.stop();
  });

  test('key authentication: online, host key pinned on first use, check recorded', async () => {
    const id = await createTarget(credentials.key as number);
    const res = await testTarget(id);
    assert.equal(res.statusCode, 200);
    const body = res.json();
    assert.equal(body.success, true, body.message);
    assert.equal(body.status, 'online');
    assert.equal(body.message, 'Connection successful');
    assert.ok(Number.isInteger(body.response_time_ms) && body.response_time_ms >= 0);
    const target = await getTarget(id);
    assert.equal(target.status, 'online');
    assert.equal(target.host_key_fingerprint, sshd.hostKeyFingerprint);
    assert.ok(target.last_checked_at);
  });

  test('password authentication works too', async () => {
    const body = (await testTarget(await createTarget(credentials.password as number))).json();
    assert.equal(body.success, true, body.message);
    assert.equal(body.status, 'online');
  });

  test('a wrong password is auth_failed', async () => {
    const id = await createTarget(credentials.wrong as number);
    const body = (await testTarget(id)).json();
    assert.equal(body.success, false);
    assert.equal(body.status, 'auth_failed');
    assert.equal((await getTarget(id)).status, 'auth_failed');
  });

  test('a closed port is offline', async () => {
    const id = await createTarget(credentials.key as number, await freePort());
    const body = (await testTarget(id)).json();
    assert.equal(body.success, false);
    assert.equal(body.status, 'offline');
    assert.match(body.message, /ECONNREFUSED/);
  });

  test('a server presenting another key gets no credential: host_key_mismatch, zero auth attempts', async () => {
    let authAttempts = 0;
    const impostor = new ssh2.Server({ hostKeys: [ed25519PrivateKey()] }, (client) => {
      client.on('authentication', (auth) => {
        authAttempts++;
        auth.reject();
      });
      client.on('error', () => {});
    });
    const port = await freePort();
    await new Promise<void>((resolve) => impostor.listen(port, '127.0.0.1', resolve));
    try {
      const id = await createTarget(credentials.password as number, port);
      await ctx.deps.db.updateTable('targets').set({ host_key_fingerprint: sshd.hostKeyFingerprint }).where('id', '=', id).execute();
      const body = (await testTarget(id)).json();
      assert.equal(body.success, false);
      assert.equal(body.status, 'host_key_mismatch');
      assert.match(body.details.presented_host_key, /^SHA256:/);
      assert.equal(authAttempts, 0, 'no authentication was attempted against the impostor');
      assert.equal((await getTarget(id)).status, 'host_key_mismatch');
    } finally {
      impostor.close();
    }
  });

  test('a changed host key blocks the target until an operator resets it', async () => {
    const id = await createTarget(credentials.key as number);
    assert.equal((await testTarget(id)).json().status, 'online');
    const pinned = (await getTarget(id)).host_key_fingerprint;
    await sshd.swapHostKey();
    assert.notEqual(sshd.hostKeyFingerprint, pinned);

    const blocked = (await testTarget(id)).json();
    assert.equal(blocked.status, 'host_key_mismatch');
    assert.equal((await getTarget(id)).host_key_fingerprint, pinned, 'the pinned key is not replaced by the new one');
    assert.equal((await testTarget(id)).json().status, 'host_key_mismatch', 'still blocked on retry');

    const operator = await ctx.createUser('operator');
    const reset = await ctx.request({ method: 'POST', url: `/targets/${id}/host-key/reset`, token: operator.token });
    assert.equal(reset.statusCode, 200);
    assert.equal(reset.json().host_key_fingerprint, null);
    const after = (await testTarget(id)).json();
    assert.equal(after.success, true, after.message);
    assert.equal((await getTarget(id)).host_key_fingerprint, sshd.hostKeyFingerprint);
  });
});
