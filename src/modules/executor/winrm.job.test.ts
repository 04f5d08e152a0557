/**
 * Job runs on winrm targets keep the SSH semantics (runs.*.ssh.test.ts): a step timeout ends
 * `timed_out`, a cancel `canceled`, both with the remote command terminated and its shell deleted;
 * output is capped with the marker; secrets are masked in stored output. Against the WinRM
 * stand-in (NTLM over HTTP with message encryption).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { startWinrmServer, type WinrmServer } from '../../../test/winrm-server.ts';
import { MAX_OUTPUT, runsClient, stepOf, targetStatus, waitUntil } from '../runs/runs.fixtures.ts';

const WIN_USER = 'Administrator';
const WIN_PASSWORD = 'Wïnrm-Job-Secret 3';
const MARKER = '\n[output truncated]\n';

describe('job runs on winrm targets: timeout, cancel, output cap, masking', () => {
  let ctx: TestContext;
  let winrm: WinrmServer;
  let targetId = 0;
  const { api, createCredential, createJob, startRun, waitForRun } = runsClient(() => ctx);

  before(async () => {
    ctx = await createTestContext({ worker: true, env: { OPSCONDUCTOR_MAX_OUTPUT_BYTES: String(MAX_OUTPUT) } });
    winrm = await startWinrmServer({ users: { [WIN_USER]: WIN_PASSWORD } });
    const credential = await createCredential({ type: 'winrm', username: WIN_USER, password: WIN_PASSWORD, auth: 'ntlm' });
    const res = await api('POST', '/targets', { name: unique('win'), host: '127.0.0.1', port: winrm.port, os_type: 'windows', protocol: 'winrm', credential_id: credential });
    assert.equal(res.statusCode, 200, res.body);
    targetId = res.json().id as number;
  });
  after(async () => {
    await ctx?.close();
    await winrm?.close();
  });

  /** After the run: nothing of its command left on the host, and the command was terminated (Signal) before its shell was deleted. */
  const assertRemoteGone = async (from: number) => {
    await waitUntil('the remote command and its shell to be gone', () => winrm.runningCommands() === 0 && winrm.openShells() === 0, 5000);
    const recent = winrm.exchanges.slice(from);
    const shellId = recent.find((e) => e.action === 'Create')?.shellId;
    const actions = recent.filter((e) => e.shellId === shellId).map((e) => e.action);
    const [signal, remove] = [actions.indexOf('Signal'), actions.lastIndexOf('Delete')];
    assert.ok(signal >= 0 && signal < remove, `Signal terminate before Delete: ${actions.join(', ')}`);
  };

  test('a step past its timeout_s ends timed_out; the remote command is terminated and its shell deleted', async () => {
    const from = winrm.exchanges.length;
    const job = await createJob({
      steps: [
        { type: 'command', name: 'slow', command: 'echo started; sleep 30', timeout_s: 2 },
        { type: 'command', name: 'after', command: 'echo after' },
      ],
    });
    const run = await waitForRun(await startRun(job.id, { target_ids: [targetId] }));
    const slow = stepOf(run, targetId, 0);
    assert.equal(slow.status, 'timed_out', JSON.stringify(slow));
    assert.equal(slow.stdout, 'started\n');
    assert.ok((slow.duration_ms ?? 0) >= 1900 && (slow.duration_ms ?? 0) < 15_000, `duration ${slow.duration_ms}`);
    assert.equal(stepOf(run, targetId, 1).status, 'skipped');
    assert.equal(targetStatus(run, targetId), 'timed_out');
    await assertRemoteGone(from);
  });

  test('a run cancel ends canceled; the remote command is terminated and its shell deleted', async () => {
    const from = winrm.exchanges.length;
    const job = await createJob({ steps: [{ type: 'command', name: 'slow', command: 'echo begin; sleep 30', timeout_s: 600 }] });
    const runId = await startRun(job.id, { target_ids: [targetId] });
    await waitUntil('the command to run on the WinRM host', () => winrm.runningCommands() > 0, 15_000);
    const canceled = await api('POST', `/job-runs/${runId}/cancel`);
    assert.equal(canceled.statusCode, 200, canceled.body);
    const run = await waitForRun(runId);
    assert.equal(run.status, 'canceled', JSON.stringify(run));
    assert.equal(targetStatus(run, targetId), 'canceled');
    const step = stepOf(run, targetId, 0);
    assert.equal(step.status, 'canceled', 'the running step is canceled, not failed');
    await assertRemoteGone(from);
  });

  test('output over OPSCONDUCTOR_MAX_OUTPUT_BYTES is truncated with the visible marker', async () => {
    const job = await createJob({
      steps: [
        { type: 'command', name: 'big', command: "head -c 100000 /dev/zero | tr '\\0' x", shell: 'cmd' },
        { type: 'command', name: 'small', command: 'echo small', shell: 'cmd' },
      ],
    });
    const run = await waitForRun(await startRun(job.id, { target_ids: [targetId] }));
    const big = stepOf(run, targetId, 0);
    assert.equal(big.status, 'succeeded', JSON.stringify(big));
    assert.equal(big.truncated, true);
    assert.equal(big.stdout, 'x'.repeat(MAX_OUTPUT) + MARKER);
    const small = stepOf(run, targetId, 1);
    assert.deepEqual([small.truncated, small.stdout], [false, 'small\n']);
  });

  test('a secret parameter and the credential password are masked in stored output', async () => {
    const secret = `hunter-${randomBytes(8).toString('hex')}`;
    const job = await createJob({
      parameters: { token: { type: 'string', secret: true, required: true } },
      steps: [{ type: 'command', name: 'secrets', command: `echo "tok={{ params.token }}"; echo "pw=${WIN_PASSWORD}" >&2`, shell: 'cmd' }],
    });
    const run = await waitForRun(await startRun(job.id, { target_ids: [targetId], parameters: { token: secret } }));
    const step = stepOf(run, targetId, 0);
    assert.equal(step.status, 'succeeded', JSON.stringify(step));
    assert.equal(step.stdout, 'tok=***\n', 'a secret parameter is masked in stored stdout');
    assert.equal(step.stderr, 'pw=***\n', 'the credential password is masked in stored stderr');
    assert.equal(run.parameters && (run.parameters as Record<string, unknown>).token, '***');
    const body = JSON.stringify(run);
    assert.ok(!body.includes(secret) && !body.includes(WIN_PASSWORD), 'no secret anywhere in the run');
  });
});
