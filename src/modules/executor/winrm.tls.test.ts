/**
 * WinRM over HTTPS wired in: POST /execute/winrm says how the certificate was checked, and job
 * command steps on https targets run when the certificate passes the target's check and are
 * `unreachable` with a tls_error when it does not — against the WinRM stand-in serving TLS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { makeSelfSignedCert } from '../../../test/tls.ts';
import { startWinrmServer, type WinrmServer } from '../../../test/winrm-server.ts';

const WIN_USER = 'Administrator';
const WIN_PASSWORD = 'Wïnrm-TLS-Secret <&> 2';

describe('WinRM execution over HTTPS', () => {
  const cert = makeSelfSignedCert('IP:127.0.0.1');
  let ctx: TestContext;
  let winrm: WinrmServer;
  let plain: WinrmServer;
  const ids = { verified: 0, pinned: 0, pinnedBasic: 0, unchecked: 0, http: 0 };

  const post = (url: string, payload: Record<string, unknown>) => ctx.request({ method: 'POST', url, token: ctx.adminToken, payload });
  const created = async (url: string, payload: Record<string, unknown>) => {
    const res = await post(url, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().id as number;
  };

  before(async () => {
    ctx = await createTestContext({ worker: true });
    winrm = await startWinrmServer({ users: { [WIN_USER]: WIN_PASSWORD }, tls: { key: cert.key, cert: cert.cert } });
    plain = await startWinrmServer({ users: { [WIN_USER]: WIN_PASSWORD } });
    const credential = (auth: string) => created('/credentials', { name: unique('c'), type: 'winrm', username: WIN_USER, password: WIN_PASSWORD, auth });
    const [ntlm, basic] = [await credential('ntlm'), await credential('basic')];
    const target = (credentialId: number, payload: Record<string, unknown>) =>
      created('/targets', { name: unique('win'), host: '127.0.0.1', port: winrm.port, os_type: 'windows', protocol: 'winrm', use_tls: true, credential_id: credentialId, ...payload });
    ids.verified = await target(ntlm, {});
    ids.pinned = await target(ntlm, { tls_fingerprint: cert.fingerprint });
    ids.pinnedBasic = await target(basic, { tls_fingerprint: cert.fingerprint });
    ids.unchecked = await target(ntlm, { tls_verify: false });
    ids.http = await target(ntlm, { port: plain.port, use_tls: false });
  });
  after(async () => {
    await ctx?.close();
    await winrm?.close();
    await plain?.close();
  });

  test('POST /execute/winrm on pinned targets (NTLM and Basic): output comes back, tls says pinned, nothing NTLM-sealed', async () => {
    const sealed = winrm.messages.encrypted;
    for (const id of [ids.pinned, ids.pinnedBasic]) {
      const res = await post('/execute/winrm', { target_id: id, command: "echo 'over tls'; exit 2" });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual([res.json().output, res.json().exit_code, res.json().tls], ['over tls\n', 2, 'pinned']);
    }
    assert.equal(winrm.messages.encrypted, sealed);
  });

  test('POST /execute/winrm with tls_verify false says not_verified; over plain http there is no tls field', async () => {
    const unchecked = await post('/execute/winrm', { target_id: ids.unchecked, command: 'echo ok', shell: 'cmd' });
    assert.deepEqual([unchecked.json().output, unchecked.json().tls], ['ok\n', 'not_verified']);
    const http = await post('/execute/winrm', { target_id: ids.http, command: 'echo ok' });
    assert.equal(http.json().output, 'ok\n');
    assert.equal('tls' in http.json(), false);
  });

  test('POST /execute/winrm validating a self-signed certificate: tls_error naming its fingerprint, no secret', async () => {
    const res = await post('/execute/winrm', { target_id: ids.verified, command: 'echo never' });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().success, false);
    assert.equal(res.json().tls, 'verified');
    assert.match(res.json().error, /^tls_error: /);
    assert.ok(res.json().error.includes(cert.fingerprint), res.json().error);
    assert.doesNotMatch(res.body, new RegExp(WIN_PASSWORD.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  test('a job on https targets: the pinned one succeeds, the refused one is unreachable with tls_error', async () => {
    const job = await created('/jobs', { name: unique('tls-job'), steps: [{ type: 'command', name: 'hello', command: 'echo hello' }] });
    const queued = await post(`/jobs/${job}/run`, { target_ids: [ids.pinned, ids.verified] });
    assert.equal(queued.statusCode, 200, queued.body);
    const runId = queued.json().job_run_id as number;
    let run: { status: string; targets: Array<{ target_id: number; status: string }>; steps: Array<{ target_id: number; stdout: string; error: string | null }> };
    const deadline = Date.now() + 20_000;
    for (;;) {
      run = (await ctx.request({ method: 'GET', url: `/job-runs/${runId}`, token: ctx.adminToken })).json();
      if (['completed', 'failed'].includes(run.status) || Date.now() > deadline) {
        break;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const statusOf = (id: number) => run.targets.find((t) => t.target_id === id)?.status;
    assert.deepEqual([statusOf(ids.pinned), statusOf(ids.verified)], ['succeeded', 'unreachable']);
    assert.equal(run.steps.find((s) => s.target_id === ids.pinned)?.stdout, 'hello\n');
    assert.match(run.steps.find((s) => s.target_id === ids.verified)?.error ?? '', /^tls_error: .*not trusted/);
  });
});
