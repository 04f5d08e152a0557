/**
 * Creating credentials of every type, the ones refused, and (last, over all of this file's
 * requests) that no secret is stored in clear, answered or logged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { assertNoSecretIn, credentialsApp, ISO_UTC, RESPONSE_KEYS, SCANNED_TABLES, tableText } from './credentials.fixtures.ts';

describe('credentials', () => {
  const app = credentialsApp();
  const { call, post, put, get, create, secret, countRows, secrets, bodies } = app;

  test('an ssh key credential: metadata, flags and the same fingerprint ssh-keygen prints', async () => {
    const { ctx, m } = app;
    const name = unique('ssh-key');
    const res = await post({ name, type: 'ssh', username: 'deploy', private_key: m.ed25519.privateKey, description: 'deploy key' });
    assert.equal(res.statusCode, 200, res.body);
    const body = res.json();
    assert.deepEqual(Object.keys(body).sort(), RESPONSE_KEYS);
    assert.ok(Number.isInteger(body.id) && body.id > 0);
    assert.equal(body.name, name);
    assert.equal(body.type, 'ssh');
    assert.equal(body.username, 'deploy');
    assert.equal(body.description, 'deploy key');
    assert.equal(body.domain, null);
    assert.equal(body.auth, null);
    assert.equal(body.has_private_key, true);
    assert.equal(body.has_password, false);
    assert.equal(body.has_passphrase, false);
    assert.equal(body.has_token, false);
    assert.equal(body.has_certificate, false);
    assert.equal(body.public_key_fingerprint, m.ed25519.fingerprint);
    assert.equal(body.certificate, null);
    assert.match(body.created_at, ISO_UTC);
    assert.match(body.updated_at, ISO_UTC);
    const admin = (await call({ method: 'GET', url: '/users/me', token: ctx.adminToken })).json();
    assert.equal(body.created_by, admin.id);

    const fetched = await get(body.id);
    assert.equal(fetched.statusCode, 200);
    assert.deepEqual(fetched.json(), body);

    const resolved = await ctx.deps.credentials.resolve(body.id);
    assert.equal(resolved.private_key, m.ed25519.privateKey);
    assert.equal(resolved.username, 'deploy');
    assert.equal(resolved.password, undefined);
    assert.equal(resolved.passphrase, undefined);
  });

  test('an encrypted ssh key with passphrase and password, and an RSA PEM key', async () => {
    const { ctx, m } = app;
    const password = secret('ssh-pw');
    const enc = await create({ type: 'ssh', username: 'root', private_key: m.encrypted.privateKey, passphrase: m.encrypted.passphrase, password });
    assert.equal(enc.has_private_key, true);
    assert.equal(enc.has_passphrase, true);
    assert.equal(enc.has_password, true);
    assert.equal(enc.public_key_fingerprint, m.encrypted.fingerprint);
    const resolvedEnc = await ctx.deps.credentials.resolve(enc.id);
    assert.equal(resolvedEnc.private_key, m.encrypted.privateKey);
    assert.equal(resolvedEnc.passphrase, m.encrypted.passphrase);
    assert.equal(resolvedEnc.password, password);

    const rsa = await create({ type: 'ssh', username: 'ops', private_key: m.rsaPem.privateKey });
    assert.equal(rsa.public_key_fingerprint, m.rsaPem.fingerprint);
    assert.equal(rsa.has_passphrase, false);

    const rsaEnc = await create({ type: 'ssh', username: 'ops', private_key: m.rsaPemEncrypted.privateKey, passphrase: m.rsaPemEncrypted.passphrase });
    assert.equal(rsaEnc.public_key_fingerprint, m.rsaPemEncrypted.fingerprint);
    assert.equal(rsaEnc.has_passphrase, true);
  });

  test('an ssh credential with only a password has no fingerprint', async () => {
    const { ctx } = app;
    const password = secret('ssh-only-pw');
    const body = await create({ type: 'ssh', username: 'admin', password });
    assert.equal(body.has_password, true);
    assert.equal(body.has_private_key, false);
    assert.equal(body.public_key_fingerprint, null);
    assert.equal((await ctx.deps.credentials.resolve(body.id)).password, password);
  });

  test('winrm (domain, auth, ntlm by default), password and api_token credentials', async () => {
    const { ctx } = app;
    const winPassword = secret('win-pw');
    const winrm = await create({ type: 'winrm', username: 'Administrator', password: winPassword, domain: 'CORP', auth: 'basic' });
    assert.deepEqual(Object.keys(winrm).sort(), RESPONSE_KEYS);
    assert.equal(winrm.type, 'winrm');
    assert.equal(winrm.domain, 'CORP');
    assert.equal(winrm.auth, 'basic');
    assert.equal(winrm.has_password, true);
    assert.equal(winrm.public_key_fingerprint, null);
    const resolvedWin = await ctx.deps.credentials.resolve(winrm.id);
    assert.deepEqual(
      { username: resolvedWin.username, password: resolvedWin.password, domain: resolvedWin.domain, auth: resolvedWin.auth },
      { username: 'Administrator', password: winPassword, domain: 'CORP', auth: 'basic' },
    );

    const ntlm = await create({ type: 'winrm', username: 'svc', password: secret('win-pw2') });
    assert.equal(ntlm.auth, 'ntlm');
    assert.equal(ntlm.domain, null);

    const password = secret('plain-pw');
    const plain = await create({ type: 'password', username: 'dbuser', password });
    assert.equal(plain.type, 'password');
    assert.equal(plain.has_password, true);
    assert.equal(plain.has_private_key, false);
    assert.equal((await ctx.deps.credentials.resolve(plain.id)).password, password);

    const token = secret('tok');
    const api = await create({ type: 'api_token', token });
    assert.equal(api.type, 'api_token');
    assert.equal(api.has_token, true);
    assert.equal(api.has_password, false);
    assert.equal(api.username, null);
    const resolvedApi = await ctx.deps.credentials.resolve(api.id);
    assert.equal(resolvedApi.token, token);
    assert.equal(resolvedApi.password, undefined);
  });

  test('certificate credentials: certificate metadata is shown, the PEM and key are not', async () => {
    const { ctx, m } = app;
    const cert = await create({ type: 'certificate', certificate: m.cert.certificate, private_key: m.cert.privateKey });
    assert.equal(cert.type, 'certificate');
    assert.equal(cert.has_certificate, true);
    assert.equal(cert.has_private_key, true);
    assert.equal(cert.has_passphrase, false);
    assert.equal(cert.public_key_fingerprint, null);
    assert.equal(cert.certificate.fingerprint, m.cert.fingerprint);
    assert.match(cert.certificate.subject, /CN=test-plain/);
    assert.match(cert.certificate.issuer, /CN=test-plain/);
    assert.equal(typeof cert.certificate.valid_to, 'string');
    const resolved = await ctx.deps.credentials.resolve(cert.id);
    assert.equal(resolved.certificate, m.cert.certificate);
    assert.equal(resolved.private_key, m.cert.privateKey);

    const enc = await create({
      type: 'certificate',
      certificate: m.certEncrypted.certificate,
      private_key: m.certEncrypted.privateKey,
      passphrase: m.certEncrypted.passphrase,
    });
    assert.equal(enc.has_passphrase, true);
    assert.match(enc.certificate.subject, /CN=test-enc/);
  });

  test('every invalid credential is a 400 naming the field, and nothing is stored', async () => {
    const { m } = app;
    const pw = secret('bad-pw');
    const wrongPassphrase = secret('wrong-pp');
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['unknown type', { type: 'kerberos', username: 'u', password: pw }, 'type'],
      ['missing type', { username: 'u', password: pw }, 'type'],
      ['missing name', { name: undefined, type: 'password', username: 'u', password: pw }, 'name'],
      ['ssh without username', { type: 'ssh', private_key: m.ed25519.privateKey }, 'username'],
      ['ssh with neither key nor password', { type: 'ssh', username: 'u' }, 'private_key'],
      ['winrm without username', { type: 'winrm', password: pw }, 'username'],
      ['winrm without password', { type: 'winrm', username: 'u' }, 'password'],
      ['password without password', { type: 'password', username: 'u' }, 'password'],
      ['password without username', { type: 'password', password: pw }, 'username'],
      ['api_token without token', { type: 'api_token' }, 'token'],
      ['certificate without certificate', { type: 'certificate', private_key: m.cert.privateKey }, 'certificate'],
      ['certificate without private key', { type: 'certificate', certificate: m.cert.certificate }, 'private_key'],
      ['garbage private key', { type: 'ssh', username: 'u', private_key: 'this is not a key at all' }, 'private_key'],
      ['truncated private key', { type: 'ssh', username: 'u', private_key: m.ed25519.privateKey.slice(0, 200) }, 'private_key'],
      ['public key given as the private key', { type: 'ssh', username: 'u', private_key: m.ed25519.publicKey }, 'private_key'],
      ['encrypted key without passphrase', { type: 'ssh', username: 'u', private_key: m.encrypted.privateKey }, 'passphrase'],
      ['encrypted key with a wrong passphrase', { type: 'ssh', username: 'u', private_key: m.encrypted.privateKey, passphrase: wrongPassphrase }, 'passphrase'],
      ['encrypted PEM key without passphrase', { type: 'ssh', username: 'u', private_key: m.rsaPemEncrypted.privateKey }, 'passphrase'],
      ['encrypted PEM key with a wrong passphrase', { type: 'ssh', username: 'u', private_key: m.rsaPemEncrypted.privateKey, passphrase: wrongPassphrase }, 'passphrase'],
      ['passphrase without a private key', { type: 'ssh', username: 'u', password: pw, passphrase: wrongPassphrase }, 'passphrase'],
      ['certificate with a non-matching key', { type: 'certificate', certificate: m.cert.certificate, private_key: m.rsaPem.privateKey }, 'private_key'],
      ['garbage certificate', { type: 'certificate', certificate: 'not a certificate', private_key: m.cert.privateKey }, 'certificate'],
      [
        'encrypted certificate key with a wrong passphrase',
        { type: 'certificate', certificate: m.certEncrypted.certificate, private_key: m.certEncrypted.privateKey, passphrase: wrongPassphrase },
        'passphrase',
      ],
      ['token on ssh', { type: 'ssh', username: 'u', password: pw, token: secret('stray-tok') }, 'token'],
      ['private key on winrm', { type: 'winrm', username: 'u', password: pw, private_key: m.ed25519.privateKey }, 'private_key'],
      ['password on api_token', { type: 'api_token', token: secret('tok-x'), password: pw }, 'password'],
      ['domain on ssh', { type: 'ssh', username: 'u', password: pw, domain: 'CORP' }, 'domain'],
      ['auth on password', { type: 'password', username: 'u', password: pw, auth: 'basic' }, 'auth'],
      ['certificate on ssh', { type: 'ssh', username: 'u', password: pw, certificate: m.cert.certificate }, 'certificate'],
      ['bad winrm auth', { type: 'winrm', username: 'u', password: pw, auth: 'kerberos' }, 'auth'],
      ['unknown field', { type: 'password', username: 'u', password: pw, pasword: pw }, 'pasword'],
      ['empty password', { type: 'password', username: 'u', password: '' }, 'password'],
      ['number as password', { type: 'password', username: 'u', password: 12345678 }, 'password'],
    ];
    const before = await countRows();
    for (const [label, payload, field] of cases) {
      const res = await post({ name: unique('bad'), ...payload });
      assert.equal(res.statusCode, 400, `${label}: ${res.statusCode} ${res.body}`);
      assert.equal(res.json().error.code, 'validation_error', label);
      assert.equal(res.json().error.field, field, `${label}: ${res.body}`);
      assert.doesNotMatch(res.body, /stack|at .*\.ts:\d+/, label);
    }
    assert.equal(await countRows(), before, 'no invalid credential was stored');
  });

  test('names are unique, case-insensitively: 409 naming name on create and rename', async () => {
    const name = unique('Dup-Name');
    const first = await create({ name, type: 'api_token', token: secret('tok-d') });
    assertError(await post({ name: name.toUpperCase(), type: 'api_token', token: secret('tok-d2') }), 409, 'conflict', 'name');
    assertError(await post({ name: name.toLowerCase(), type: 'password', username: 'u', password: secret('pw-d') }), 409, 'conflict', 'name');
    const other = await create({ type: 'api_token', token: secret('tok-d3') });
    assertError(await put(other.id, { name: name.toLowerCase() }), 409, 'conflict', 'name');
    // Renaming a credential to a different case of its own name is fine.
    const renamed = await put(first.id, { name: name.toUpperCase() });
    assert.equal(renamed.statusCode, 200, renamed.body);
    assert.equal(renamed.json().name, name.toUpperCase());
  });

  test('stored rows hold only sealed envelopes under the current key; settings and audit_log hold no secret', async () => {
    const { ctx } = app;
    const rows = await ctx.deps.db.selectFrom('credentials').select(['id', 'secret_ciphertext', 'key_id']).execute();
    assert.ok(rows.length >= 10, `${rows.length} credentials`);
    for (const row of rows) {
      assert.match(row.secret_ciphertext, /^v1\.[0-9a-f]{16}(\.[A-Za-z0-9_-]+){4}$/);
      assert.equal(row.key_id, ctx.deps.keyring.current.id);
      assert.equal(row.secret_ciphertext.split('.')[1], row.key_id);
    }
    for (const table of SCANNED_TABLES) {
      const { count, text } = await tableText(ctx, table);
      assert.ok(count > 0, `${table} has rows`);
      assertNoSecretIn(text, secrets, table);
    }
  });

  test('no response body and no log line contains a secret', () => {
    const { ctx } = app;
    assert.ok(bodies.length > 50, `${bodies.length} responses recorded`);
    assert.ok(secrets.length > 40, `${secrets.length} secrets tracked`);
    for (const body of bodies) {
      assertNoSecretIn(body, secrets, `a response (${body.slice(0, 200)})`);
    }
    const logs = ctx.logs.text();
    assert.ok(ctx.logs.lines.length > 50, 'requests were logged');
    assertNoSecretIn(logs, secrets, 'the logs');
  });
});
