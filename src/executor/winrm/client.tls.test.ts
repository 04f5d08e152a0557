/**
 * Our WinRM client over HTTPS against the stand-in serving TLS with a self-signed certificate made
 * by openssl: certificate validation by default, a pinned fingerprint, validation off; and NTLM
 * without message encryption over TLS (with it over plain HTTP).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';

import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, WINRM_PRODUCT_VERSION, type WinrmServer } from '../../../test/winrm-server.ts';
import { identify, runWinrmCommand, WinrmError, type WinrmOptions } from './client.ts';

const USER = 'ops';
const PASSWORD = 'Tls-Wïnrm <pass> &';

const isKind = (kind: string, text?: string) => (e: unknown) => {
  assert.ok(e instanceof WinrmError, String(e));
  assert.equal(e.kind, kind, e.message);
  if (text !== undefined) {
    assert.ok(e.message.includes(text), `"${e.message}" names ${text}`);
  }
  assert.ok(!e.message.includes(PASSWORD));
  return true;
};

/**
 * identify() in a fresh Node process whose NODE_EXTRA_CA_CERTS is `caPath` (Node reads it only at
 * start): the only way to trust a test CA without a CA option of our own.
 */
function identifyTrusting(caPath: string, options: WinrmOptions): Promise<{ ok?: { productVersion: string }; kind?: string; message?: string }> {
  const client = pathToFileURL(join(import.meta.dirname, 'client.ts')).href;
  const script = `import { identify } from ${JSON.stringify(client)};
identify(JSON.parse(process.argv[1])).then((ok) => console.log(JSON.stringify({ ok })), (e) => console.log(JSON.stringify({ kind: e.kind, message: e.message })));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, JSON.stringify(options)], { env: { ...process.env, NODE_EXTRA_CA_CERTS: caPath }, timeout: 30_000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(JSON.parse(stdout)),
    );
  });
}

describe('WinRM client over HTTPS', () => {
  const cert = makeSelfSignedCert('IP:127.0.0.1');
  const elsewhere = makeSelfSignedCert('DNS:winrm.example.test');
  let server: WinrmServer;
  let otherName: WinrmServer;
  let plainHttp: WinrmServer;
  const errors: unknown[] = [];
  before(async () => {
    const common = { users: { [USER]: PASSWORD }, maxOperationTimeoutMs: 300, onError: (err: unknown) => errors.push(err) };
    server = await startWinrmServer({ ...common, tls: { key: cert.key, cert: cert.cert } });
    otherName = await startWinrmServer({ ...common, tls: { key: elsewhere.key, cert: elsewhere.cert } });
    plainHttp = await startWinrmServer(common);
  });
  after(async () => {
    assert.deepEqual(errors, [], 'the stand-in failed on no request');
    await Promise.all([server?.close(), otherName?.close(), plainHttp?.close()]);
  });

  const options = (auth: 'basic' | 'ntlm', tls?: WinrmOptions['tls']): WinrmOptions => ({ url: server.url, username: USER, password: PASSWORD, auth, operationTimeoutS: 1, tls });

  test('the stand-in serves https with the generated certificate', () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+\/wsman$/);
  });

  for (const auth of ['basic', 'ntlm'] as const) {
    test(`${auth}, pinned: a command runs; every SOAP message goes plain (TLS protects it, no NTLM sealing)`, async () => {
      const seen = { ...server.messages };
      const result = await runWinrmCommand(options(auth, { verify: true, fingerprint: cert.fingerprint }), 'echo out; echo err >&2; sleep 0.5; exit 3', []);
      assert.deepEqual(result, { stdout: 'out\n', stderr: 'err\n', exitCode: 3 });
      assert.equal(server.messages.encrypted, seen.encrypted, 'nothing was NTLM-sealed');
      assert.ok(server.messages.plain - seen.plain >= 5, 'create, command, receive…, signal, delete arrived as plain SOAP');
      assert.equal(server.openShells(), 0);
    });

    test(`${auth}, pinned: a wrong password is still auth_failed`, async () => {
      await assert.rejects(identify({ ...options(auth, { verify: true, fingerprint: cert.fingerprint }), password: 'wrong' }), isKind('auth_failed'));
    });
  }

  test('over plain HTTP, NTLM still seals every message', async () => {
    const seen = { ...plainHttp.messages };
    await identify({ url: plainHttp.url, username: USER, password: PASSWORD, auth: 'ntlm' });
    assert.deepEqual(plainHttp.messages, { plain: seen.plain, encrypted: seen.encrypted + 1 });
  });

  for (const auth of ['basic', 'ntlm'] as const) {
    test(`${auth}: by default a self-signed certificate is refused (tls_error, naming its fingerprint) before anything is sent`, async () => {
      const seen = { ...server.messages };
      const actions = server.actions.length;
      await assert.rejects(identify(options(auth)), isKind('tls_error', cert.fingerprint));
      await assert.rejects(runWinrmCommand(options(auth, { verify: true }), 'echo never', []), isKind('tls_error', 'self-signed'));
      assert.deepEqual(server.messages, seen);
      assert.equal(server.actions.length, actions);
    });
  }

  test('a wrong pin is refused and the error names the fingerprint the server presented', async () => {
    const wrong = elsewhere.fingerprint;
    await assert.rejects(identify(options('ntlm', { verify: true, fingerprint: wrong })), (e: unknown) => {
      isKind('tls_error', cert.fingerprint)(e);
      assert.match((e as Error).message, /does not match the pinned fingerprint/);
      return true;
    });
  });

  test('a pin may be given as plain hex in any case', async () => {
    const plainHex = cert.fingerprint.replaceAll(':', '').toLowerCase();
    assert.deepEqual(await identify(options('basic', { verify: true, fingerprint: plainHex })), { productVersion: WINRM_PRODUCT_VERSION });
  });

  test('a pin checks neither chain nor host name: a self-signed certificate for another name is accepted', async () => {
    const pinned = { url: otherName.url, username: USER, password: PASSWORD, auth: 'ntlm' as const, tls: { verify: true, fingerprint: elsewhere.fingerprint } };
    assert.deepEqual(await identify(pinned), { productVersion: WINRM_PRODUCT_VERSION });
  });

  test('verify: false accepts the certificate unchecked', async () => {
    for (const auth of ['basic', 'ntlm'] as const) {
      const result = await runWinrmCommand(options(auth, { verify: false }), 'echo unchecked', []);
      assert.equal(result.stdout, 'unchecked\n');
    }
  });

  test('https to a listener that does not speak TLS is tls_error; a closed port stays offline', async () => {
    const notTls = plainHttp.url.replace(/^http:/, 'https:');
    await assert.rejects(identify({ url: notTls, username: USER, password: PASSWORD, auth: 'basic', tls: { verify: false } }), isKind('tls_error', 'handshake'));
    const closed = new URL(server.url);
    closed.port = '1';
    await assert.rejects(identify({ url: closed.toString(), username: USER, password: PASSWORD, auth: 'basic' }), isKind('offline'));
  });

  test('with its CA trusted (NODE_EXTRA_CA_CERTS) the certificate validates for 127.0.0.1; one for another name is refused', async () => {
    const trusted = await identifyTrusting(cert.certPath, { url: server.url, username: USER, password: PASSWORD, auth: 'ntlm' });
    assert.deepEqual(trusted, { ok: { productVersion: WINRM_PRODUCT_VERSION } });
    const mismatch = await identifyTrusting(elsewhere.certPath, { url: otherName.url, username: USER, password: PASSWORD, auth: 'ntlm' });
    assert.equal(mismatch.kind, 'tls_error', mismatch.message);
    assert.match(mismatch.message ?? '', /ERR_TLS_CERT_ALTNAME_INVALID/);
  });
});
