/**
 * Discovery through the API, end to end on loopback only: ranges checked against the allow-list,
 * a job scanned by the worker finds a real OpenSSH on a non-standard port (named from its banner)
 * and a WinRM-like HTTP listener, imports the SSH host as a target on its real port with the given
 * credential and group, skips it on a second import; cancel, delete and the ad hoc scan.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { freePort, SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';

interface Job {
  id: number;
  status: string;
  progress: number;
  discovered_targets: number;
  summary: Record<string, unknown>;
  error: string | null;
}
interface Found {
  id: number;
  host: string;
  os: string;
  services: string[];
  ports: Array<{ port: number; service: string; banner: string | null }>;
  existing_target_id: number | null;
  import_status: string;
}

/** One sshd answering on 40 loopback addresses: a small fleet. */
const FLEET = Array.from({ length: 40 }, (_, i) => `127.0.0.${i + 1}`);

describe('discovery', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshd: Sshd;
  let more: Sshd[] = [];
  let wsman: Server;
  let wsmanPort: number;
  let closedPort: number;
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>) => ctx.request({ method, url, token: ctx.adminToken, payload });
  const ok = async (method: 'POST' | 'GET', url: string, payload?: Record<string, unknown>) => {
    const res = await call(method, url, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Record<string, unknown>;
  };
  const settled = async (id: number, timeoutMs = 30_000): Promise<Job> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = (await ok('GET', `/discovery/jobs/${id}`)) as unknown as Job;
      if (!['queued', 'running'].includes(job.status) || Date.now() > deadline) {
        return job;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    ctx = await createTestContext({ worker: true });
    // sshd listens on at most 16 addresses: three of them on one port make the fleet.
    sshd = await startSshd({ addresses: FLEET.slice(0, 16) });
    more = await Promise.all([FLEET.slice(16, 32), FLEET.slice(32)].map((addresses) => startSshd({ addresses, port: sshd.port })));
    wsman = createServer((_req, res) => {
      res.writeHead(405, { server: 'Microsoft-HTTPAPI/2.0', 'content-length': 0 });
      res.end();
    });
    await new Promise<void>((r) => wsman.listen(0, '0.0.0.0', r));
    const address = wsman.address();
    wsmanPort = typeof address === 'object' && address ? address.port : 0;
    closedPort = await freePort();
  });
  after(async () => {
    await ctx?.close();
    await sshd?.stop();
    await Promise.all(more.map((s) => s.stop()));
    wsman?.closeAllConnections();
    await new Promise((r) => wsman?.close(r));
  });

  test('ranges: counted, and refused outside the allow-list (loopback by default) naming the part', async () => {
    assert.deepEqual(await ok('POST', '/discovery/validate-range', { network_range: '127.0.0.1-5, 127.0.0.3, localhost' }), { valid: true, count: 6, errors: [] });
    const outside = await ok('POST', '/discovery/validate-range', { network_range: '127.0.0.1, 10.0.0.0/8' });
    assert.equal(outside.valid, false);
    assert.deepEqual((outside.errors as Array<{ part: string }>).map((e) => e.part), ['10.0.0.0/8']);
    const refused = await call('POST', '/discovery/jobs', { name: 'lan', network_range: '192.168.1.0/24' });
    assertError(refused, 400, 'validation_error', 'network_range');
    assert.match(refused.json().error.message, /192\.168\.1\.0\/24/);
    assertError(await call('POST', '/discovery/jobs', { name: 'x', network_range: '127.0.0.1', scan_ports: [0] }), 400, 'validation_error');
  });

  test('a job over 127.0.0.1-127.0.0.40 finds every fleet host by its SSH banner on a non-standard port; import creates ssh targets with the credential and group, a second import skips them', async () => {
    const created = await ok('POST', '/discovery/jobs', { name: unique('loop'), network_range: '127.0.0.1-127.0.0.40', scan_ports: [sshd.port, wsmanPort, closedPort] });
    assert.equal(created.status, 'queued');
    const started = await ok('POST', `/discovery/jobs/${created.id}/start`);
    assert.equal(started.message, 'Discovery job started');
    assert.match(String(started.estimated_duration), /^about \d+ (second|seconds|minutes)$/);
    const job = await settled(Number(created.id));
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.equal(job.progress, 100);
    assert.deepEqual([job.summary.addresses, job.summary.ports, job.summary.probed], [40, 3, 120]);

    const { targets } = (await ok('GET', `/discovery/jobs/${created.id}/results`)) as { targets: Found[] };
    const local = targets.find((t) => t.host === '127.0.0.1');
    assert.ok(local, JSON.stringify(targets));
    const ssh = local.ports.find((p) => p.port === sshd.port);
    assert.equal(ssh?.service, 'ssh', 'named from the banner, not the port');
    assert.match(String(ssh?.banner), /^SSH-2\.0-OpenSSH/);
    assert.equal(local.os, 'linux');
    assert.ok(local.services.includes('ssh'));
    assert.ok(!local.ports.some((p) => p.port === closedPort));
    assert.deepEqual(targets.map((t) => t.host), FLEET);
    for (const found of targets) {
      assert.equal(found.ports.find((p) => p.port === sshd.port)?.service, 'ssh', `${found.host}: ssh from the banner`);
      assert.ok(found.ports.some((p) => p.port === wsmanPort && /Microsoft-HTTPAPI/.test(String(p.banner))), `${found.host} answers HTTP with its Server header`);
    }
    assert.equal(job.discovered_targets, 40);

    const credential = (await ok('POST', '/credentials', { name: unique('c'), type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey })).id as number;
    const group = (await ok('POST', '/target-groups', { name: unique('g') })).id as number;
    const first = await ok('POST', '/discovery/import', { discovery_job_id: created.id, target_ids: targets.map((t) => t.id), default_credential_id: credential, group_id: group });
    assert.deepEqual([first.imported, first.skipped], [40, 0]);
    const targetId = (first.targets as Array<{ host: string; target_id: number }>).find((t) => t.host === '127.0.0.1')?.target_id as number;
    const target = (await ok('GET', `/targets/${targetId}`)) as Record<string, unknown>;
    assert.deepEqual([target.host, target.port, target.protocol, target.os_type, target.credential_id], ['127.0.0.1', sshd.port, 'ssh', 'linux', credential]);
    const members = await ok('GET', `/targets?group_id=${group}&limit=100`);
    assert.equal(members.total, 40, 'every imported target joined the group');
    const tested = await ok('POST', `/targets/${targetId}/test`);
    assert.equal(tested.success, true, JSON.stringify(tested));

    const again = await ok('POST', '/discovery/import', { discovery_job_id: created.id, target_ids: targets.map((t) => t.id) });
    assert.deepEqual([again.imported, again.skipped], [0, 40]);
    assert.match(String((again.targets as Array<{ reason: string }>)[0]?.reason), /already a target/);
    const after = (await ok('GET', `/discovery/jobs/${created.id}/results`)) as { targets: Found[] };
    assert.equal(after.targets.find((t) => t.host === '127.0.0.1')?.existing_target_id, targetId);
    assertError(await call('POST', '/discovery/import', { discovery_job_id: created.id, target_ids: [999999] }), 400, 'validation_error', 'target_ids');
  });

  test('cancel stops a running scan; a running job cannot be deleted; a second start is refused', async () => {
    const created = await ok('POST', '/discovery/jobs', { name: unique('big'), network_range: '127.0.0.0/16', scan_ports: [closedPort, closedPort + 1] });
    await ok('POST', `/discovery/jobs/${created.id}/start`);
    const deadline = Date.now() + 10_000;
    while (((await ok('GET', `/discovery/jobs/${created.id}`)) as unknown as Job).status !== 'running' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    assertError(await call('DELETE', `/discovery/jobs/${created.id}`), 409, 'conflict');
    assertError(await call('POST', `/discovery/jobs/${created.id}/start`), 409, 'invalid_state');
    assert.deepEqual(await ok('POST', `/discovery/jobs/${created.id}/cancel`), { message: 'Discovery job is stopping' });
    const job = await settled(Number(created.id), 15_000);
    assert.equal(job.status, 'canceled');
    assert.ok(Number(job.summary.probed) < 65534 * 2, 'stopped before the end');
    assert.deepEqual(await ok('DELETE' as 'GET', `/discovery/jobs/${created.id}`), { message: 'Discovery job deleted successfully' });
    assertError(await call('GET', `/discovery/jobs/${created.id}`), 404, 'not_found');
  });

  test('a running job whose worker died (no heartbeat for a minute) is failed as worker_lost', async () => {
    const created = await ok('POST', '/discovery/jobs', { name: unique('lost'), network_range: '127.0.0.1' });
    const old = new Date(Date.now() - 5 * 60_000);
    await ctx.deps.db.updateTable('discovery_jobs').set({ status: 'running', started_at: old, heartbeat_at: old }).where('id', '=', Number(created.id)).execute();
    assert.deepEqual(await ctx.deps.discoveryRepo.reapLost(new Date(), 60), [created.id]);
    const job = (await ok('GET', `/discovery/jobs/${created.id}`)) as unknown as Job;
    assert.equal(job.status, 'failed');
    assert.match(String(job.error), /^worker_lost/);
  });

  test('scanner nmap finds the same hosts (open ports from nmap -sT, services from our banner reading)', async () => {
    const created = await ok('POST', '/discovery/jobs', { name: unique('nmap'), network_range: '127.0.0.1-127.0.0.5', scan_ports: [sshd.port, closedPort], scanner: 'nmap' });
    await ok('POST', `/discovery/jobs/${created.id}/start`);
    const job = await settled(Number(created.id));
    assert.equal(job.status, 'completed', JSON.stringify(job));
    assert.equal(job.summary.scanner, 'nmap');
    const { targets } = (await ok('GET', `/discovery/jobs/${created.id}/results`)) as { targets: Found[] };
    assert.deepEqual(targets.map((t) => [t.host, t.ports.map((p) => `${p.port}/${p.service}`)]), FLEET.slice(0, 5).map((h) => [h, [`${sshd.port}/ssh`]]));
  });

  test('an ad hoc scan is an unnamed job, pollable by its id; localhost is a host name', async () => {
    const scan = await ok('POST', '/discovery/scan', { network_range: 'localhost', ports: [sshd.port] });
    assert.match(String(scan.scan_id), /^scan_\d+$/);
    assert.equal(scan.status, 'running');
    const job = await settled(Number(String(scan.scan_id).slice(5)));
    assert.equal(job.status, 'completed');
    const { targets } = (await ok('GET', `/discovery/jobs/${job.id}/results`)) as { targets: Array<Found & { hostname: string | null }> };
    assert.ok(targets.some((t) => t.hostname === 'localhost' && t.services.includes('ssh')), JSON.stringify(targets));
  });
});
