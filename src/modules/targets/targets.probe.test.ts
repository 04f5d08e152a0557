import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { freePort } from '../../../test/sshd.ts';
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

  for (const auth of ['ntlm', 'basic'] as const) {
    test(`WinRM (${auth}): an authenticated Identify; the test reports the product version the host announces`, async () => {
      const winrm = await startWinrmServer({ users: { Administrator: 'Winrm-Secret-123' } });
      closers.push(winrm.close);
      const cred = await credential({ type: 'winrm', username: 'Administrator', password: 'Winrm-Secret-123', auth });
      const body = await check(await target({ os_type: 'windows', protocol: 'winrm', port: winrm.port, credential_id: cred }));
      assert.equal(body.success, true, body.message);
      assert.equal(body.status, 'online');
      assert.deepEqual(body.details, { product_version: WINRM_PRODUCT_VERSION, auth_checked: true });
      const wrong = await credential({ type: 'winrm', username: 'Administrator', password: 'not-the-password', auth });
      const refused = await check(await target({ os_type: 'windows', protocol: 'winrm', port: winrm.port, credential_id: wrong }));
      assert.equal(refused.success, false);
      assert.equal(refused.status, 'auth_failed');
      assert.doesNotMatch(JSON.stringify(refused), /not-the-password/);
    });
  }

  test('WinRM: a listener that does not offer the credential scheme is auth_failed', async () => {
    const wsman = await listen((_req, res) => res.writeHead(401, { 'www-authenticate': 'Negotiate' }).end());
    servers.push(wsman.server);
    const cred = await credential({ type: 'winrm', username: 'Administrator', password: 'Winrm-Secret-123', auth: 'basic' });
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
