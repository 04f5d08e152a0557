import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { assertError } from '../../../test/assertions.ts';
import { credentialsApp, RESPONSE_KEYS } from './credentials.fixtures.ts';

describe('credentials', () => {
  const app = credentialsApp();
  const { call, put, get, del, create, secret } = app;

  test('PUT keeps omitted secrets, replaces given ones, and null clears the passphrase', async () => {
    const { ctx, m } = app;
    const password = secret('put-pw');
    const created = await create({
      type: 'ssh',
      username: 'deploy',
      private_key: m.encrypted.privateKey,
      passphrase: m.encrypted.passphrase,
      password,
      description: 'before',
    });

    // Metadata only: every secret is kept.
    const meta = await put(created.id, { description: 'after', username: 'deploy2' });
    assert.equal(meta.statusCode, 200, meta.body);
    const metaBody = meta.json();
    assert.deepEqual(Object.keys(metaBody).sort(), RESPONSE_KEYS);
    assert.equal(metaBody.description, 'after');
    assert.equal(metaBody.username, 'deploy2');
    assert.equal(metaBody.name, created.name);
    assert.equal(metaBody.has_private_key, true);
    assert.equal(metaBody.has_passphrase, true);
    assert.equal(metaBody.has_password, true);
    assert.equal(metaBody.public_key_fingerprint, m.encrypted.fingerprint);
    assert.ok(Date.parse(metaBody.updated_at) >= Date.parse(created.updated_at));
    let resolved = await ctx.deps.credentials.resolve(created.id);
    assert.equal(resolved.private_key, m.encrypted.privateKey);
    assert.equal(resolved.passphrase, m.encrypted.passphrase);
    assert.equal(resolved.password, password);
    assert.equal(resolved.username, 'deploy2');

    // Replace the password only.
    const newPassword = secret('put-pw2');
    const pwChange = await put(created.id, { password: newPassword });
    assert.equal(pwChange.statusCode, 200, pwChange.body);
    resolved = await ctx.deps.credentials.resolve(created.id);
    assert.equal(resolved.password, newPassword);
    assert.equal(resolved.private_key, m.encrypted.privateKey);
    assert.equal(resolved.passphrase, m.encrypted.passphrase);

    // Replace the key with an unencrypted one and clear the passphrase: the fingerprint follows.
    const keyChange = await put(created.id, { private_key: m.ed25519b.privateKey, passphrase: null });
    assert.equal(keyChange.statusCode, 200, keyChange.body);
    assert.equal(keyChange.json().has_passphrase, false);
    assert.equal(keyChange.json().has_private_key, true);
    assert.equal(keyChange.json().public_key_fingerprint, m.ed25519b.fingerprint);
    resolved = await ctx.deps.credentials.resolve(created.id);
    assert.equal(resolved.private_key, m.ed25519b.privateKey);
    assert.equal(resolved.passphrase, undefined);
    assert.equal(resolved.password, newPassword);

    // Clearing the key leaves a password-only credential without a fingerprint.
    const noKey = await put(created.id, { private_key: null });
    assert.equal(noKey.statusCode, 200, noKey.body);
    assert.equal(noKey.json().has_private_key, false);
    assert.equal(noKey.json().public_key_fingerprint, null);
    assert.equal(noKey.json().has_password, true);
    resolved = await ctx.deps.credentials.resolve(created.id);
    assert.equal(resolved.private_key, undefined);
    assert.equal(resolved.password, newPassword);

    // GET agrees with the last PUT.
    assert.deepEqual((await get(created.id)).json(), noKey.json());
  });

  test('a PUT that breaks the credential is a 400 naming the field and changes nothing', async () => {
    const { ctx, m } = app;
    const password = secret('keep-pw');
    const created = await create({ type: 'ssh', username: 'deploy', password });
    const envelope = async () => (await ctx.deps.db.selectFrom('credentials').select('secret_ciphertext').where('id', '=', created.id).executeTakeFirstOrThrow()).secret_ciphertext;
    const stored = await envelope();

    assertError(await put(created.id, { password: null }), 400, 'validation_error', 'private_key');
    assertError(await put(created.id, { username: null }), 400, 'validation_error', 'username');
    assertError(await put(created.id, { token: secret('tok-put') }), 400, 'validation_error', 'token');
    assertError(await put(created.id, { private_key: 'garbage key' }), 400, 'validation_error', 'private_key');
    assertError(await put(created.id, { private_key: m.encrypted.privateKey }), 400, 'validation_error', 'passphrase');
    assertError(await put(created.id, { passphrase: secret('lonely-pp') }), 400, 'validation_error', 'passphrase');
    assertError(await put(created.id, { type: 'password' }), 400, 'validation_error', 'type');
    assertError(await put(created.id, { nmae: 'typo' }), 400, 'validation_error', 'nmae');

    assert.equal(await envelope(), stored, 'the sealed secrets were not rewritten');
    const resolved = await ctx.deps.credentials.resolve(created.id);
    assert.equal(resolved.password, password);
    assert.equal(resolved.username, 'deploy');

    // Once a key is there, the password can go.
    const withKey = await put(created.id, { private_key: m.ed25519.privateKey, password: null });
    assert.equal(withKey.statusCode, 200, withKey.body);
    assert.equal(withKey.json().has_password, false);
    assert.equal(withKey.json().has_private_key, true);
  });

  test('unknown ids are 404s; bad ids are 400s', async () => {
    const { ctx } = app;
    assertError(await get(999999), 404, 'not_found');
    assertError(await put(999999, { description: 'x' }), 404, 'not_found');
    assertError(await del(999999), 404, 'not_found');
    assertError(await get(0), 400, 'validation_error', 'id');
    assertError(await call({ method: 'GET', url: '/credentials/abc', token: ctx.adminToken }), 400, 'validation_error', 'id');
    await assert.rejects(ctx.deps.credentials.resolve(999999), /not found/);
  });
});
