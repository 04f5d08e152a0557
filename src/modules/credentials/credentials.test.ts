import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import type { InjectOptions } from 'fastify';
import { sql } from 'kysely';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';

/** Every key a credential response has: metadata and flags, no secret field. */
const RESPONSE_KEYS = [
  'auth',
  'certificate',
  'created_at',
  'created_by',
  'description',
  'domain',
  'has_certificate',
  'has_passphrase',
  'has_password',
  'has_private_key',
  'has_token',
  'id',
  'name',
  'public_key_fingerprint',
  'type',
  'updated_at',
  'username',
];
const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

interface SshKey {
  privateKey: string;
  publicKey: string;
  /** `ssh-keygen -l -E sha256` of the key, e.g. `SHA256:abc…`. */
  fingerprint: string;
}

interface Material {
  ed25519: SshKey;
  ed25519b: SshKey;
  encrypted: SshKey & { passphrase: string };
  rsaPem: SshKey;
  rsaPemEncrypted: SshKey & { passphrase: string };
  cert: { certificate: string; privateKey: string; fingerprint: string };
  certEncrypted: { certificate: string; privateKey: string; passphrase: string };
}

function generateMaterial(dir: string): Material {
  const sshKey = (name: string, args: string[], passphrase = ''): SshKey => {
    const path = join(dir, name);
    execFileSync('ssh-keygen', ['-q', ...args, '-N', passphrase, '-C', 'test@opsconductor', '-f', path], { stdio: 'ignore' });
    const listed = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', path], { encoding: 'utf8' });
    const fingerprint = listed.split(' ')[1] as string;
    assert.match(fingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
    return { privateKey: readFileSync(path, 'utf8'), publicKey: readFileSync(`${path}.pub`, 'utf8'), fingerprint };
  };
  const cert = (name: string, passphrase?: string) => {
    const key = join(dir, `${name}.key`);
    const crt = join(dir, `${name}.crt`);
    const keyArgs = passphrase ? ['-passout', `pass:${passphrase}`] : ['-nodes'];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', ...keyArgs, '-keyout', key, '-out', crt, '-days', '1', '-subj', `/CN=test-${name}`], {
      stdio: 'ignore',
    });
    return { certificate: readFileSync(crt, 'utf8'), privateKey: readFileSync(key, 'utf8') };
  };
  const encPass = `pp-${unique()}-${unique()}`;
  const rsaPass = `rp-${unique()}-${unique()}`;
  const certPass = `cp-${unique()}-${unique()}`;
  const plainCert = cert('plain');
  const material: Material = {
    ed25519: sshKey('ed', ['-t', 'ed25519']),
    ed25519b: sshKey('ed-b', ['-t', 'ed25519']),
    encrypted: { ...sshKey('ed-enc', ['-t', 'ed25519'], encPass), passphrase: encPass },
    rsaPem: sshKey('rsa', ['-t', 'rsa', '-b', '2048', '-m', 'PEM']),
    rsaPemEncrypted: { ...sshKey('rsa-enc', ['-t', 'rsa', '-b', '2048', '-m', 'PEM'], rsaPass), passphrase: rsaPass },
    cert: { ...plainCert, fingerprint: new X509Certificate(plainCert.certificate).fingerprint256 },
    certEncrypted: { ...cert('enc', certPass), passphrase: certPass },
  };
  assert.match(material.encrypted.privateKey, /BEGIN OPENSSH PRIVATE KEY/);
  assert.match(material.rsaPem.privateKey, /BEGIN RSA PRIVATE KEY/);
  assert.match(material.rsaPemEncrypted.privateKey, /Proc-Type: 4,ENCRYPTED/);
  assert.match(material.certEncrypted.privateKey, /BEGIN ENCRYPTED PRIVATE KEY/);
  return material;
}

/** The base64 body lines of a PEM/OpenSSH block (each would betray the key if stored or echoed). */
function bodyLines(pem: string): string[] {
  return pem
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length >= 16 && !l.startsWith('-----') && !l.includes(':'));
}

describe('credentials', () => {
  let ctx: TestContext;
  let dir: string;
  let m: Material;
  /** Every secret value any test sent; none may appear in a response, a log line or a row. */
  const secrets: string[] = [];
  /** Every response body seen. */
  const bodies: string[] = [];

  const secret = (prefix: string) => {
    const value = `${prefix}-${unique()}-${unique()}`;
    secrets.push(value);
    return value;
  };
  const call = async (options: InjectOptions & { token?: string }) => {
    const res = await ctx.request(options);
    bodies.push(res.body);
    return res;
  };
  const post = (payload: Record<string, unknown>, token = ctx.adminToken) => call({ method: 'POST', url: '/credentials', token, payload });
  const put = (id: number, payload: Record<string, unknown>, token = ctx.adminToken) => call({ method: 'PUT', url: `/credentials/${id}`, token, payload });
  const get = (id: number, token = ctx.adminToken) => call({ method: 'GET', url: `/credentials/${id}`, token });
  const del = (id: number, query = '', token = ctx.adminToken) => call({ method: 'DELETE', url: `/credentials/${id}${query}`, token });
  const create = async (payload: Record<string, unknown>) => {
    const res = await post({ name: unique('cred'), ...payload });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  const countRows = async () => Number((await ctx.deps.db.selectFrom('credentials').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'oc-cred-'));
    m = generateMaterial(dir);
    for (const key of [m.ed25519, m.ed25519b, m.encrypted, m.rsaPem, m.rsaPemEncrypted]) {
      secrets.push(...bodyLines(key.privateKey));
    }
    secrets.push(...bodyLines(m.cert.privateKey), ...bodyLines(m.certEncrypted.privateKey));
    secrets.push(m.encrypted.passphrase, m.rsaPemEncrypted.passphrase, m.certEncrypted.passphrase);
    ctx = await createTestContext({ env: { OPSCONDUCTOR_LOG_LEVEL: 'trace' } });
  });
  after(async () => {
    await ctx?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('an ssh key credential: metadata, flags and the same fingerprint ssh-keygen prints', async () => {
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
    const password = secret('ssh-only-pw');
    const body = await create({ type: 'ssh', username: 'admin', password });
    assert.equal(body.has_password, true);
    assert.equal(body.has_private_key, false);
    assert.equal(body.public_key_fingerprint, null);
    assert.equal((await ctx.deps.credentials.resolve(body.id)).password, password);
  });

  test('winrm (domain, auth, ntlm by default), password and api_token credentials', async () => {
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

  test('GET /credentials: shape, newest first, paging, type and search filters', async () => {
    const tag = unique('listing');
    const first = await create({ name: `${tag}-a`, type: 'api_token', token: secret('tok-l1') });
    const second = await create({ name: `${tag}-b`, type: 'password', username: 'x', password: secret('pw-l2') });
    const all = await call({ method: 'GET', url: '/credentials?limit=200', token: ctx.adminToken });
    assert.equal(all.statusCode, 200);
    const body = all.json();
    assert.deepEqual(Object.keys(body).sort(), ['credentials', 'limit', 'page', 'total']);
    assert.equal(body.page, 1);
    assert.equal(body.limit, 200);
    assert.equal(body.total, await countRows());
    assert.equal(body.credentials.length, body.total);
    const ids = body.credentials.map((c: { id: number }) => c.id);
    assert.deepEqual(ids, [...ids].sort((a: number, b: number) => b - a), 'newest first');
    for (const c of body.credentials) {
      assert.deepEqual(Object.keys(c).sort(), RESPONSE_KEYS);
    }

    const searched = (await call({ method: 'GET', url: `/credentials?search=${tag}`, token: ctx.adminToken })).json();
    assert.deepEqual(
      searched.credentials.map((c: { id: number }) => c.id),
      [second.id, first.id],
    );
    assert.equal(searched.total, 2);
    const typed = (await call({ method: 'GET', url: `/credentials?search=${tag}&type=api_token`, token: ctx.adminToken })).json();
    assert.deepEqual(
      typed.credentials.map((c: { id: number }) => c.id),
      [first.id],
    );
    const paged = (await call({ method: 'GET', url: `/credentials?search=${tag}&limit=1&page=2`, token: ctx.adminToken })).json();
    assert.deepEqual(
      paged.credentials.map((c: { id: number }) => c.id),
      [first.id],
    );
    assert.equal(paged.total, 2);
    assertError(await call({ method: 'GET', url: '/credentials?limit=201', token: ctx.adminToken }), 400, 'validation_error', 'limit');
    assertError(await call({ method: 'GET', url: '/credentials?type=kerberos', token: ctx.adminToken }), 400, 'validation_error', 'type');
  });

  test('every invalid credential is a 400 naming the field, and nothing is stored', async () => {
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

  test('PUT keeps omitted secrets, replaces given ones, and null clears the passphrase', async () => {
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
    assertError(await get(999999), 404, 'not_found');
    assertError(await put(999999, { description: 'x' }), 404, 'not_found');
    assertError(await del(999999), 404, 'not_found');
    assertError(await get(0), 400, 'validation_error', 'id');
    assertError(await call({ method: 'GET', url: '/credentials/abc', token: ctx.adminToken }), 400, 'validation_error', 'id');
    await assert.rejects(ctx.deps.credentials.resolve(999999), /not found/);
  });

  test('operators and viewers read metadata but cannot create, change or delete', async () => {
    const password = secret('role-pw');
    const created = await create({ type: 'password', username: 'svc', password });
    const before = await countRows();
    for (const role of ['operator', 'viewer'] as const) {
      const user = await ctx.createUser(role);
      const list = await call({ method: 'GET', url: '/credentials', token: user.token });
      assert.equal(list.statusCode, 200, `${role} list`);
      assert.ok(list.json().credentials.some((c: { id: number }) => c.id === created.id));
      const one = await get(created.id, user.token);
      assert.equal(one.statusCode, 200, `${role} get`);
      assert.equal(one.json().has_password, true);
      assert.equal(one.body.includes(password), false);

      assertError(await post({ name: unique('nope'), type: 'password', username: 'u', password: secret('role-pw2') }, user.token), 403, 'permission_error');
      assertError(await put(created.id, { password: secret('role-pw3') }, user.token), 403, 'permission_error');
      assertError(await put(created.id, { description: 'hijacked' }, user.token), 403, 'permission_error');
      assertError(await del(created.id, '', user.token), 403, 'permission_error');
      assertError(await del(created.id, '?force=true', user.token), 403, 'permission_error');
    }
    assertError(await call({ method: 'GET', url: '/credentials' }), 401, 'auth_error');
    assertError(await call({ method: 'POST', url: '/credentials', payload: { name: 'x', type: 'api_token', token: 'abcdefgh' } }), 401, 'auth_error');
    assert.equal(await countRows(), before);
    const resolved = await ctx.deps.credentials.resolve(created.id);
    assert.equal(resolved.password, password);
    assert.equal((await get(created.id)).json().description, '');
  });

  test('deleting a credential a target uses is a 409 naming the target; force detaches it', async () => {
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

  test('stored rows hold only sealed envelopes under the current key; settings and audit_log hold no secret', async () => {
    const rows = await ctx.deps.db.selectFrom('credentials').select(['id', 'secret_ciphertext', 'key_id']).execute();
    assert.ok(rows.length >= 10, `${rows.length} credentials`);
    for (const row of rows) {
      assert.match(row.secret_ciphertext, /^v1\.[0-9a-f]{16}(\.[A-Za-z0-9_-]+){4}$/);
      assert.equal(row.key_id, ctx.deps.keyring.current.id);
      assert.equal(row.secret_ciphertext.split('.')[1], row.key_id);
    }
    for (const table of ['credentials', 'settings', 'audit_log'] as const) {
      const result = await sql<{ row: string }>`select row_to_json(t)::text as row from ${sql.table(table)} t`.execute(ctx.deps.db);
      assert.ok(result.rows.length > 0, `${table} has rows`);
      const text = result.rows.map((r) => r.row).join('\n');
      for (const value of secrets) {
        assert.equal(text.includes(value), false, `${table} contains a secret of length ${value.length} (${value.slice(0, 6)}…)`);
      }
      assert.doesNotMatch(text, /PRIVATE KEY|BEGIN CERTIFICATE/, table);
    }
  });

  test('no response body and no log line contains a secret', () => {
    assert.ok(bodies.length > 50, `${bodies.length} responses recorded`);
    assert.ok(secrets.length > 40, `${secrets.length} secrets tracked`);
    for (const body of bodies) {
      for (const value of secrets) {
        assert.equal(body.includes(value), false, `a response contains a secret (${value.slice(0, 6)}…): ${body.slice(0, 200)}`);
      }
      assert.doesNotMatch(body, /PRIVATE KEY|BEGIN CERTIFICATE/);
    }
    const logs = ctx.logs.text();
    assert.ok(ctx.logs.lines.length > 50, 'requests were logged');
    for (const value of secrets) {
      assert.equal(logs.includes(value), false, `the logs contain a secret (${value.slice(0, 6)}…)`);
    }
    assert.doesNotMatch(logs, /PRIVATE KEY|BEGIN CERTIFICATE/);
  });
});
