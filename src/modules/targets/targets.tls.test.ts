/**
 * Certificate checks per target (tls_verify, tls_fingerprint): stored, validated and returned; and
 * POST /targets/{id}/test over HTTPS against the WinRM stand-in and an HTTPS listener serving a
 * self-signed certificate made by openssl — validation refuses it, a pin or tls_verify: false
 * accepts it, and the test says which check was made.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, WINRM_PRODUCT_VERSION, type WinrmServer } from '../../../test/winrm-server.ts';

const WIN_PASSWORD = 'Tls-Target-Secret-1';
const cert = makeSelfSignedCert('IP:127.0.0.1');
const other = makeSelfSignedCert('IP:127.0.0.1');
const lowerPlain = cert.fingerprint.replaceAll(':', '').toLowerCase();

describe('targets: TLS certificate checks', () => {
  let ctx: TestContext;
  let winrm: WinrmServer;
  let api: Server;
  let apiPort: number;
  let winrmCred: number;

  const post = (url: string, payload: Record<string, unknown>) => ctx.request({ method: 'POST', url, token: ctx.adminToken, payload });
  const put = (id: number, payload: Record<string, unknown>) => ctx.request({ method: 'PUT', url: `/targets/${id}`, token: ctx.adminToken, payload });
  const create = (payload: Record<string, unknown>) => post('/targets', { name: unique('tls'), host: '127.0.0.1', os_type: 'windows', protocol: 'winrm', ...payload });
  const created = async (payload: Record<string, unknown>) => {
    const res = await create(payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { id: number; tls_verify: boolean; tls_fingerprint: string | null; use_tls: boolean };
  };
  const check = async (id: number) => {
    const res = await ctx.request({ method: 'POST', url: `/targets/${id}/test`, token: ctx.adminToken });
    assert.equal(res.statusCode, 200, res.body);
    assert.doesNotMatch(res.body, new RegExp(WIN_PASSWORD));
    return res.json() as { success: boolean; status: string; message: string; details: Record<string, unknown> };
  };

  before(async () => {
    ctx = await createTestContext();
    winrm = await startWinrmServer({ users: { Administrator: WIN_PASSWORD }, tls: { key: cert.key, cert: cert.cert } });
    api = createServer({ key: cert.key, cert: cert.cert }, (_req, res) => res.writeHead(200).end('ok'));
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    apiPort = (api.address() as { port: number }).port;
    const res = await post('/credentials', { name: unique('c'), type: 'winrm', username: 'Administrator', password: WIN_PASSWORD, auth: 'ntlm' });
    winrmCred = res.json().id;
  });
  after(async () => {
    api?.closeAllConnections();
    await new Promise((resolve) => api?.close(resolve));
    await winrm?.close();
    await ctx?.close();
  });

  describe('fields', () => {
    test('defaults: tls_verify true, no pin; a pin is stored as uppercase AA:BB:… whatever form it came in', async () => {
      const plain = await created({ use_tls: true });
      assert.deepEqual([plain.tls_verify, plain.tls_fingerprint], [true, null]);
      const pinned = await created({ use_tls: true, tls_fingerprint: lowerPlain });
      assert.equal(pinned.tls_fingerprint, cert.fingerprint);
      const colons = await created({ protocol: 'http', os_type: 'other', use_tls: true, tls_fingerprint: cert.fingerprint.toLowerCase() });
      assert.equal(colons.tls_fingerprint, cert.fingerprint);
      const fetched = await ctx.request({ method: 'GET', url: `/targets/${pinned.id}`, token: ctx.adminToken });
      assert.equal(fetched.json().tls_fingerprint, cert.fingerprint);
      const unchecked = await created({ use_tls: true, tls_verify: false });
      assert.deepEqual([unchecked.tls_verify, unchecked.tls_fingerprint], [false, null]);
    });

    test('a malformed fingerprint is a 400 naming tls_fingerprint, on create and update', async () => {
      const bad = [
        'AB:CD',
        lowerPlain.slice(2),
        `${lowerPlain}00`,
        lowerPlain.replace(/^../, 'zz'),
        `SHA256:${Buffer.from(lowerPlain, 'hex').toString('base64')}`,
        cert.fingerprint.replace(':', '-'),
        '',
      ];
      for (const fingerprint of bad) {
        assertError(await create({ use_tls: true, tls_fingerprint: fingerprint }), 400, 'validation_error', 'tls_fingerprint');
      }
      const target = await created({ use_tls: true });
      assertError(await put(target.id, { tls_fingerprint: 'not-a-fingerprint' }), 400, 'validation_error', 'tls_fingerprint');
    });

    test('on ssh targets or without use_tls the options are a 400 naming the field; their defaults are accepted', async () => {
      const ssh = { protocol: 'ssh', os_type: 'linux' };
      assertError(await create({ ...ssh, tls_verify: false }), 400, 'validation_error', 'tls_verify');
      assertError(await create({ ...ssh, tls_fingerprint: cert.fingerprint }), 400, 'validation_error', 'tls_fingerprint');
      assertError(await create({ tls_fingerprint: cert.fingerprint }), 400, 'validation_error', 'tls_fingerprint');
      assertError(await create({ protocol: 'http', os_type: 'other', use_tls: false, tls_verify: false }), 400, 'validation_error', 'tls_verify');
      // What GET returns can be sent back as it is.
      const target = await created({ ...ssh, tls_verify: true, tls_fingerprint: null });
      assert.equal((await put(target.id, { tls_verify: true, tls_fingerprint: null })).statusCode, 200);
      assertError(await put(target.id, { tls_verify: false }), 400, 'validation_error', 'tls_verify');
    });

    test('a pin and tls_verify: false exclude each other; the 400 names the field the caller set', async () => {
      assertError(await create({ use_tls: true, tls_verify: false, tls_fingerprint: cert.fingerprint }), 400, 'validation_error', 'tls_fingerprint');
      const pinned = await created({ use_tls: true, tls_fingerprint: cert.fingerprint });
      assertError(await put(pinned.id, { tls_verify: false }), 400, 'validation_error', 'tls_verify');
      const unchecked = await created({ use_tls: true, tls_verify: false });
      assertError(await put(unchecked.id, { tls_fingerprint: cert.fingerprint }), 400, 'validation_error', 'tls_fingerprint');
      const swapped = await put(pinned.id, { tls_verify: false, tls_fingerprint: null });
      assert.deepEqual([swapped.json().tls_verify, swapped.json().tls_fingerprint], [false, null]);
    });

    test('turning TLS off (use_tls false, or moving to ssh) drops the options', async () => {
      const pinned = await created({ use_tls: true, tls_fingerprint: cert.fingerprint });
      const off = (await put(pinned.id, { use_tls: false })).json();
      assert.deepEqual([off.use_tls, off.tls_verify, off.tls_fingerprint], [false, true, null]);
      const unchecked = await created({ use_tls: true, tls_verify: false });
      const ssh = (await put(unchecked.id, { protocol: 'ssh', os_type: 'linux' })).json();
      assert.deepEqual([ssh.protocol, ssh.use_tls, ssh.tls_verify], ['ssh', false, true]);
      assertError(await put(pinned.id, { use_tls: false, tls_verify: false }), 400, 'validation_error', 'tls_verify');
    });

    test('bulk import takes them from JSON rows and CSV columns; a bad one is reported on its row', async () => {
      const [a, b, c, d] = [unique('imp'), unique('imp'), unique('imp'), unique('imp')];
      const json = await post('/targets/import', [
        { name: a, host: '10.9.0.1', os_type: 'windows', protocol: 'winrm', use_tls: true, tls_fingerprint: lowerPlain },
        { name: b, host: '10.9.0.2', os_type: 'windows', protocol: 'winrm', tls_verify: false },
      ] as unknown as Record<string, unknown>);
      assert.equal(json.statusCode, 200, json.body);
      assert.equal(json.json().created, 1);
      assert.deepEqual(json.json().errors.map((e: { line: number; field: string }) => [e.line, e.field]), [[2, 'tls_verify']]);
      const csv = await ctx.request({
        method: 'POST',
        url: '/targets/import',
        token: ctx.adminToken,
        headers: { 'content-type': 'text/csv' },
        payload: `name,host,os_type,protocol,use_tls,tls_verify,tls_fingerprint\n${c},10.9.0.3,other,http,true,no,\n${d},10.9.0.4,other,http,true,,${cert.fingerprint}\n`,
      });
      assert.equal(csv.statusCode, 200, csv.body);
      assert.deepEqual(csv.json().errors, []);
      const list = (await ctx.request({ method: 'GET', url: '/targets?search=imp&limit=200', token: ctx.adminToken })).json().targets as Array<{ name: string; tls_verify: boolean; tls_fingerprint: string | null }>;
      const byName = (name: string) => list.find((t) => t.name === name);
      assert.equal(byName(a)?.tls_fingerprint, cert.fingerprint);
      assert.equal(byName(c)?.tls_verify, false);
      assert.equal(byName(d)?.tls_fingerprint, cert.fingerprint);
    });
  });

  describe('POST /targets/{id}/test over HTTPS', () => {
    const winrmTarget = (payload: Record<string, unknown>) => created({ port: winrm.port, use_tls: true, credential_id: winrmCred, ...payload });

    test('WinRM, validating (the default): the self-signed certificate is refused: offline, tls_error, naming its fingerprint', async () => {
      const body = await check((await winrmTarget({})).id);
      assert.equal(body.success, false);
      assert.equal(body.status, 'offline');
      assert.equal(body.details.error, 'tls_error');
      assert.equal(body.details.tls, 'verified');
      assert.ok(body.message.includes(cert.fingerprint), body.message);
    });

    test('WinRM, pinned: an authenticated Identify, reported as pinned; a wrong pin names the presented fingerprint', async () => {
      const body = await check((await winrmTarget({ tls_fingerprint: cert.fingerprint })).id);
      assert.equal(body.success, true, body.message);
      assert.deepEqual(body.details, { product_version: WINRM_PRODUCT_VERSION, auth_checked: true, tls: 'pinned' });
      const wrong = await check((await winrmTarget({ tls_fingerprint: other.fingerprint })).id);
      assert.deepEqual([wrong.status, wrong.details.error, wrong.details.tls], ['offline', 'tls_error', 'pinned']);
      assert.match(wrong.message, new RegExp(`${cert.fingerprint}\\) does not match the pinned fingerprint ${other.fingerprint}`));
    });

    test('WinRM, tls_verify false: online, reported as not_verified', async () => {
      const body = await check((await winrmTarget({ tls_verify: false })).id);
      assert.equal(body.status, 'online', body.message);
      assert.equal(body.details.tls, 'not_verified');
    });

    test('WinRM without a WinRM credential (the unauthenticated probe) checks the certificate the same way', async () => {
      const refused = await check((await created({ port: winrm.port, use_tls: true })).id);
      assert.deepEqual([refused.status, refused.details.error, refused.details.tls], ['offline', 'tls_error', 'verified']);
      const pinned = await check((await created({ port: winrm.port, use_tls: true, tls_fingerprint: cert.fingerprint })).id);
      assert.deepEqual([pinned.status, pinned.details.tls], ['online', 'pinned']);
    });

    test('HTTP targets: validated by default, pinned or unchecked on request', async () => {
      const http = (payload: Record<string, unknown>) => created({ protocol: 'http', os_type: 'other', port: apiPort, use_tls: true, ...payload });
      const refused = await check((await http({})).id);
      assert.deepEqual([refused.status, refused.details.error, refused.details.tls], ['offline', 'tls_error', 'verified']);
      const pinned = await check((await http({ tls_fingerprint: cert.fingerprint })).id);
      assert.deepEqual([pinned.status, pinned.details.status_code, pinned.details.tls], ['online', 200, 'pinned']);
      const unchecked = await check((await http({ tls_verify: false })).id);
      assert.deepEqual([unchecked.status, unchecked.details.tls], ['online', 'not_verified']);
    });

    test('without TLS the test says nothing about certificates', async () => {
      const plain = await startWinrmServer({ users: { Administrator: WIN_PASSWORD } });
      try {
        const body = await check((await created({ port: plain.port, credential_id: winrmCred })).id);
        assert.equal(body.status, 'online', body.message);
        assert.equal('tls' in body.details, false);
      } finally {
        await plain.close();
      }
    });
  });
});
