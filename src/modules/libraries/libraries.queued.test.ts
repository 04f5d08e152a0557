/**
 * A run uses the library version installed when it was queued: the run is held in the queue (no
 * worker yet), the library is upgraded, then a worker starts and the run prints the old version's
 * output.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';
import { writeBundle } from '../../libraries/bundle.ts';
import { startWorker } from '../../worker/worker.ts';
import { downloadCatalog, uploadBundle } from './libraries.fixtures.ts';

describe('a queued run keeps its library version', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshd: Sshd;
  let worker: Awaited<ReturnType<typeof startWorker>> | undefined;
  const ok = async (url: string, payload: Record<string, unknown>) => {
    const res = await ctx.request({ method: 'POST', url, token: ctx.adminToken, payload });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };

  before(async () => {
    ctx = await createTestContext({ queue: true });
    sshd = await startSshd();
  });
  after(async () => {
    await worker?.stop();
    await ctx?.close();
    await sshd?.stop();
  });

  test('queued with 1.0.0, upgraded to 1.1.0 before a worker runs it: the output is 1.0.0’s', async () => {
    const credential = (await ok('/credentials', { name: unique('c'), type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey })).id;
    const target = (await ok('/targets', { name: unique('linux'), host: sshd.host, port: sshd.port, os_type: 'linux', protocol: 'ssh', credential_id: credential })).id;
    await ok('/libraries/linux-core/install', {});
    const job = await ok('/jobs', { name: unique('frozen'), steps: [{ type: 'library', name: 'info', library: 'linux-core', step: 'get_system_info' }] });
    const queued = await ok(`/jobs/${job.id}/run`, { target_ids: [target] });

    const current = (await downloadCatalog(ctx, 'linux-core')).bundle;
    const changed = new Map(current.files).set('scripts/get_system_info.sh', Buffer.from('#!/bin/sh\necho OC_OUTPUT hostname=from-1.1.0\n'));
    const up = await uploadBundle(ctx, await writeBundle({ ...current.manifest, version: '1.1.0' }, changed));
    assert.equal(up.statusCode, 200, up.body);
    const still = (await ctx.request({ method: 'GET', url: `/job-runs/${queued.job_run_id}`, token: ctx.adminToken })).json();
    assert.equal(still.status, 'queued', 'no worker has taken it yet');

    worker = await startWorker(ctx.deps, { concurrency: 1, dispatch: true });
    const deadline = Date.now() + 30_000;
    let run: { status: string; steps: Array<{ outputs: Record<string, string> }> };
    do {
      await new Promise((r) => setTimeout(r, 100));
      run = (await ctx.request({ method: 'GET', url: `/job-runs/${queued.job_run_id}`, token: ctx.adminToken })).json();
    } while (['queued', 'running'].includes(run.status) && Date.now() < deadline);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    const outputs = run.steps[0]?.outputs ?? {};
    assert.notEqual(outputs.hostname, 'from-1.1.0');
    assert.ok(outputs.hostname && Number(outputs.memory_total_kb) > 0, `1.0.0's outputs: ${JSON.stringify(outputs)}`);
  });
});
