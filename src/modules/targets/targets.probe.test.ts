import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { freePort } from '../../../test/sshd.ts';
import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, WINRM_PRODUCT_VERSION } from '../../../test/winrm-server.ts';

/** A real HTTP listener on loopback; `handler` decides every answer. */
async function listen(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<{ server: Server; port: number; requests: IncomingMessage[] }> {
  const requests: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    requests.push(req);
    handler(req, res);
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port, requests };
}

describe('POST /targets/{id}/test for WinRM and HTTP targets', () => {
  let ctx: TestContext;
  const servers: Server[] = [];
  const closers: Array<() => Promise<void>> = [];
  const credential = async (payload: Record<string, unknown>) =>
    (await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('c'), ...payload } })).json().id as number;
  const target = async (payload: Record<string, unknown>) => {
    const res = await ctx.request({ method: 'POST', url: '/targets', token: ctx.adminToken, payload: { name: unique('t'), host: '127.0.0.1', ...payload } });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().id as number;
  };
  const check = async (id: number) => (await ctx.request({ method: 'POST', url: `/targets/${id}/test`, token: ctx.adminToken })).json();

  before(async () => {
    ctx = await createTestContext();
  });
  after(async () => {
    servers.forEach((s) => s.close());
    await Promise.all(closers.map((close) => close()));
    await ctx.close();
  });

  // Basic only over HTTPS (over plain HTTP it would send the password in clear); NTLM over HTTP with message encryption.
  for (const [auth, https] of [
    ['ntlm', false],
    ['basic', true],
  ] as const) {
    test(`WinRM (${auth} over ${https ? 'HTTPS' : 'HTTP'}): an authenticated Identify; the test reports the product version the host announces`, async () => {
      const cert = makeSelfSignedCert('IP:127.0.0.1');
      const winrm = await startWinrmServer({ users: { Administrator: 'Winrm-Secret-123' }, ...(https ? { tls: { key: cert.key, cert: cert.cert } } : {}) });
      closers.push(winrm.close);
      const endpoint = { os_type: 'windows', protocol: 'winrm', port: winrm.port, ...(https ? { use_tls: true, tls_fingerprint: cert.fingerprint } : {}) };
      const cred = await credential({ type: 'winrm', username: 'Administrator', password: 'Winrm-Secret-123', auth });
      const body = await check(await target({ ...endpoint, credential_id: cred }));
      assert.equal(body.success, true, body.message);
      assert.equal(body.status, 'online');
      assert.deepEqual(body.details, { product_version: WINRM_PRODUCT_VERSION, auth_checked: true, ...(https ? { tls: 'pinned' } : {}) });
      const wrong = await credential({ type: 'winrm', username: 'Administrator', password: 'not-the-password', auth });
      const refused = await check(await target({ ...endpoint, credential_id: wrong }));
      assert.equal(refused.success, false);
      assert.equal(refused.status, 'auth_failed');
      assert.doesNotMatch(JSON.stringify(refused), /not-the-password/);
    });
  }

  test('WinRM: a credential switched to Basic after the fact is refused over plain HTTP, with nothing sent', async () => {
    const winrm = await startWinrmServer({ users: { Administrator: 'Winrm-Secret-123' } });
    closers.push(winrm.close);
    const cred = await credential({ type: 'winrm', username: 'Administrator', password: 'Winrm-Secret-123', auth: 'ntlm' });
    const id = await target({ os_type: 'windows', protocol: 'winrm', port: winrm.port, credential_id: cred });
    const switched = await ctx.request({ method: 'PUT', url: `/credentials/${cred}`, token: ctx.adminToken, payload: { auth: 'basic' } });
    assert.equal(switched.statusCode, 400, 'the API refuses the switch while a plain-HTTP target uses it');
    // As a credential switched before that check existed (or by hand in the database) would be.
    await ctx.deps.db.updateTable('credentials').set({ auth: 'basic' }).where('id', '=', cred).execute();
    const body = await check(id);
    assert.equal(body.success, false);
    assert.equal(body.details.error, 'insecure_auth');
    assert.match(body.message, /HTTPS \(port 5986\) or NTLM/);
    assert.deepEqual(winrm.actions, [], 'nothing reached the host');
  });

  test('WinRM: a listener that does not offer the credential scheme is auth_failed', async () => {
    const wsman = await listen((_req, res) => res.writeHead(401, { 'www-authenticate': 'Negotiate' }).end());
    servers.push(wsman.server);
    const cred = await credential({ type: 'winrm', username: 'Administrator', password: 'Winrm-Secret-123', auth: 'ntlm' });
    const body = await check(await target({ os_type: 'windows', protocol: 'winrm', port: wsman.port, credential_id: cred }));
    assert.equal(body.success, false);
    assert.equal(body.status, 'auth_failed');
  });

  test('WinRM: nothing listening is offline', async () => {
    const body = await check(await target({ os_type: 'windows', protocol: 'winrm', port: await freePort() }));
    assert.equal(body.status, 'offline');
    assert.equal(body.success, false);
  });

  test('HTTP: GET of the base URL with the credential as bearer token', async () => {
    const api = await listen((req, res) => res.writeHead(req.headers.authorization === 'Bearer api-token-xyz' ? 200 : 401).end('ok'));
    servers.push(api.server);
    const good = await credential({ type: 'api_token', token: 'api-token-xyz' });
    const bad = await credential({ type: 'api_token', token: 'wrong-token' });
    const ok = await check(await target({ os_type: 'other', protocol: 'http', port: api.port, credential_id: good }));
    assert.equal(ok.success, true);
    assert.equal(ok.status, 'online');
    assert.equal(ok.details.status_code, 200);
    assert.equal(api.requests[0]?.method, 'GET');
    assert.equal(api.requests[0]?.url, '/');
    const refused = await check(await target({ os_type: 'other', protocol: 'http', port: api.port, credential_id: bad }));
    assert.equal(refused.success, false);
    assert.equal(refused.status, 'auth_failed');
  });

  test('the test is an operator action and is audited', async () => {
    const id = await target({ os_type: 'other', protocol: 'http', port: await freePort() });
    const viewer = await ctx.createUser('viewer');
    assert.equal((await ctx.request({ method: 'POST', url: `/targets/${id}/test`, token: viewer.token })).statusCode, 403);
    await check(id);
    const audit = await ctx.request({ method: 'GET', url: '/audit?action=target.test&limit=200', token: ctx.adminToken });
    assert.ok(audit.json().entries.some((e: { resource_id: string }) => e.resource_id === String(id)));
  });
});
