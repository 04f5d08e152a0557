/**
 * Shared by the credentials API tests (credentials.*.test.ts): key and certificate material made
 * with ssh-keygen and openssl, the response shape, and a test app per describe block whose request
 * helpers record every response body and every secret sent. After the block's tests its `after`
 * asserts that none of those secrets reached a stored row, a response or a log line.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';

import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';

/** Every key a credential response has: metadata and flags, no secret field. */
export const RESPONSE_KEYS = [
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

/** A UTC timestamp as the API writes it. */
export const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;

/** An OpenSSH key pair made by ssh-keygen. */
export interface SshKey {
  privateKey: string;
  publicKey: string;
  /** `ssh-keygen -l -E sha256` of the key, e.g. `SHA256:abc…`. */
  fingerprint: string;
}

/** The keys and certificates every describe block gets, made fresh in its `before`. */
export interface Material {
  ed25519: SshKey;
  ed25519b: SshKey;
  encrypted: SshKey & { passphrase: string };
  rsaPem: SshKey;
  rsaPemEncrypted: SshKey & { passphrase: string };
  cert: { certificate: string; privateKey: string; fingerprint: string };
  certEncrypted: { certificate: string; privateKey: string; passphrase: string };
}

/** Makes the material in `dir` with ssh-keygen and openssl. */
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

/** The tables whose rows must hold no secret. */
export const SCANNED_TABLES = ['credentials', 'settings', 'audit_log'] as const;

/** The rows of `table` as JSON text, one a line, and how many there are. */
export async function tableText(ctx: TestContext, table: (typeof SCANNED_TABLES)[number]): Promise<{ count: number; text: string }> {
  const result = await sql<{ row: string }>`select row_to_json(t)::text as row from ${sql.table(table)} t`.execute(ctx.deps.db);
  return { count: result.rows.length, text: result.rows.map((r) => r.row).join('\n') };
}

/** Asserts that `text` holds none of `secrets` and no PEM block; `where` names it in the message. */
export function assertNoSecretIn(text: string, secrets: string[], where: string): void {
  for (const value of secrets) {
    assert.equal(text.includes(value), false, `${where} contains a secret of length ${value.length} (${value.slice(0, 6)}…)`);
  }
  assert.doesNotMatch(text, /PRIVATE KEY|BEGIN CERTIFICATE/, where);
}

/** The stored rows, the response bodies and the logs of `ctx` hold none of `secrets`. */
async function assertNothingLeaked(ctx: TestContext, secrets: string[], bodies: string[]): Promise<void> {
  for (const table of SCANNED_TABLES) {
    assertNoSecretIn((await tableText(ctx, table)).text, secrets, table);
  }
  for (const body of bodies) {
    assertNoSecretIn(body, secrets, `a response (${body.slice(0, 200)})`);
  }
  assertNoSecretIn(ctx.logs.text(), secrets, 'the logs');
}

/**
 * Makes the material and starts a test app (logging at trace) in the calling describe block's
 * `before`; its `after` checks that nothing leaked, then closes the app. Read `ctx` and `m` inside
 * tests; the request helpers (as admin unless `token` is given) record every response body.
 */
export function credentialsApp() {
  let started: { ctx: TestContext; dir: string; m: Material } | undefined;
  const secrets: string[] = [];
  const bodies: string[] = [];
  const running = () => {
    assert.ok(started, 'the test app is started in before()');
    return started;
  };
  before(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'oc-cred-'));
    const m = generateMaterial(dir);
    for (const key of [m.ed25519, m.ed25519b, m.encrypted, m.rsaPem, m.rsaPemEncrypted]) {
      secrets.push(...bodyLines(key.privateKey));
    }
    secrets.push(...bodyLines(m.cert.privateKey), ...bodyLines(m.certEncrypted.privateKey));
    secrets.push(m.encrypted.passphrase, m.rsaPemEncrypted.passphrase, m.certEncrypted.passphrase);
    started = { ctx: await createTestContext({ env: { OPSCONDUCTOR_LOG_LEVEL: 'trace' } }), dir, m };
  });
  after(async () => {
    try {
      if (started) {
        await assertNothingLeaked(started.ctx, secrets, bodies);
      }
    } finally {
      await started?.ctx.close();
      if (started) {
        rmSync(started.dir, { recursive: true, force: true });
      }
    }
  });

  /** `ctx.request`, recording the body. */
  const call = async (options: InjectOptions & { token?: string }): Promise<LightMyRequestResponse> => {
    const res = await running().ctx.request(options);
    bodies.push(res.body);
    return res;
  };
  const post = (payload: Record<string, unknown>, token = running().ctx.adminToken) => call({ method: 'POST', url: '/credentials', token, payload });
  return {
    get ctx() {
      return running().ctx;
    },
    get m() {
      return running().m;
    },
    /** Every secret value any test sent; none may appear in a response, a log line or a row. */
    secrets,
    /** Every response body seen. */
    bodies,
    /** A fresh secret value starting with `prefix`, tracked in `secrets`. */
    secret: (prefix: string) => {
      const value = `${prefix}-${unique()}-${unique()}`;
      secrets.push(value);
      return value;
    },
    call,
    post,
    put: (id: number, payload: Record<string, unknown>, token = running().ctx.adminToken) => call({ method: 'PUT', url: `/credentials/${id}`, token, payload }),
    get: (id: number, token = running().ctx.adminToken) => call({ method: 'GET', url: `/credentials/${id}`, token }),
    del: (id: number, query = '', token = running().ctx.adminToken) => call({ method: 'DELETE', url: `/credentials/${id}${query}`, token }),
    /** Creates a credential with a unique name (unless `payload` names it) and returns the response body. */
    create: async (payload: Record<string, unknown>) => {
      const res = await post({ name: unique('cred'), ...payload });
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    },
    /** How many credentials are stored. */
    countRows: async () => Number((await running().ctx.deps.db.selectFrom('credentials').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n),
  };
}
