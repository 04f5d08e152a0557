/**
 * PKCS#8 SSH keys (`BEGIN PRIVATE KEY`, `BEGIN ENCRYPTED PRIVATE KEY`, as `openssl genpkey` and
 * many vaults write them) are accepted as ssh credentials and log in to a real OpenSSH server.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';

const PASSPHRASE = 'pkcs8-passphrase';

/** The `authorized_keys` line of an Ed25519 key, built from its raw public half (ssh-keygen cannot read PKCS#8 Ed25519). */
function ed25519Line(pkcs8: string, passphrase?: string): string {
  const x = Buffer.from(createPublicKey(createPrivateKey({ key: pkcs8, passphrase })).export({ format: 'jwk' }).x ?? '', 'base64url');
  const str = (b: Buffer) => Buffer.concat([Buffer.from([0, 0, 0, b.length]), b]);
  return `ssh-ed25519 ${Buffer.concat([str(Buffer.from('ssh-ed25519')), str(x)]).toString('base64')}`;
}

/** The `authorized_keys` line as OpenSSH's own ssh-keygen derives it from the PKCS#8 file. */
function sshKeygenLine(pkcs8: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'oc-pkcs8-'));
  try {
    const file = join(dir, 'key.pem');
    writeFileSync(file, pkcs8, { mode: 0o600 });
    return execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const pem = { type: 'pkcs8', format: 'pem' } as const;
const spki = { type: 'spki', format: 'pem' } as const;
const keys = {
  ed25519Encrypted: generateKeyPairSync('ed25519', { privateKeyEncoding: { ...pem, cipher: 'aes-256-cbc', passphrase: PASSPHRASE }, publicKeyEncoding: spki }).privateKey,
  rsa: generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: pem, publicKeyEncoding: spki }).privateKey,
  ecdsa: generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding: pem, publicKeyEncoding: spki }).privateKey,
};

describe('PKCS#8 SSH keys', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshd: Sshd;

  before(async () => {
    ctx = await createTestContext({ worker: true });
    sshd = await startSshd();
    sshd.authorize(ed25519Line(keys.ed25519Encrypted, PASSPHRASE));
    sshd.authorize(sshKeygenLine(keys.rsa));
    sshd.authorize(sshKeygenLine(keys.ecdsa));
  });
  after(async () => {
    await ctx?.close();
    await sshd?.stop();
  });

  const createCredential = (payload: Record<string, unknown>) =>
    ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('pkcs8'), type: 'ssh', username: SSH_TEST_USER, ...payload } });

  for (const [label, privateKey, passphrase] of [
    ['an encrypted Ed25519 key', keys.ed25519Encrypted, PASSPHRASE],
    ['an RSA key', keys.rsa, undefined],
    ['an ECDSA P-256 key', keys.ecdsa, undefined],
  ] as const) {
    test(`${label} is accepted and logs in (POST /execute/ssh)`, async () => {
      assert.match(privateKey, /BEGIN (ENCRYPTED )?PRIVATE KEY/);
      const created = await createCredential({ private_key: privateKey, ...(passphrase ? { passphrase } : {}) });
      assert.equal(created.statusCode, 200, created.body);
      assert.match(created.json().public_key_fingerprint, /^SHA256:/);
      const target = await ctx.request({
        method: 'POST',
        url: '/targets',
        token: ctx.adminToken,
        payload: { name: unique('host'), host: sshd.host, port: sshd.port, os_type: 'linux', protocol: 'ssh', credential_id: created.json().id },
      });
      assert.equal(target.statusCode, 200, target.body);
      const run = await ctx.request({ method: 'POST', url: '/execute/ssh', token: ctx.adminToken, payload: { target_id: target.json().id, command: 'echo pkcs8-ok' } });
      assert.equal(run.statusCode, 200, run.body);
      assert.equal(run.json().exit_code, 0, run.body);
      assert.equal(run.json().output.trim(), 'pkcs8-ok');
    });
  }

  test('an encrypted PKCS#8 key without its passphrase, or with a wrong one, is a 400 naming passphrase', async () => {
    const missing = await createCredential({ private_key: keys.ed25519Encrypted });
    assertError(missing, 400, 'validation_error', 'passphrase');
    assert.match(missing.json().error.message, /required/);
    const wrong = await createCredential({ private_key: keys.ed25519Encrypted, passphrase: 'wrong' });
    assertError(wrong, 400, 'validation_error', 'passphrase');
    assert.match(wrong.json().error.message, /does not decrypt/);
  });

  test('a PKCS#8 key of a type SSH cannot use is a 400 naming private_key', async () => {
    const x25519 = generateKeyPairSync('x25519', { privateKeyEncoding: pem, publicKeyEncoding: spki }).privateKey;
    assertError(await createCredential({ private_key: x25519 }), 400, 'validation_error', 'private_key');
  });
});
