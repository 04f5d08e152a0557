/**
 * A worker that shuts down in the middle of a scan puts the job back in the queue (not
 * "canceled", which is what a user asks for), and the next worker scans it to the end. Two
 * discovery runners on one test database stand in for two worker processes, one after the other.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext } from '../../../test/app.ts';
import { startDiscoveryRunner } from './discovery.task.ts';

describe('discovery across a worker shutdown', () => {
  let ctx: TestContext;
  let listener: Server;
  let open = 0;
  before(async () => {
    ctx = await createTestContext({ queue: true });
    listener = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.5', resolve));
    open = (listener.address() as { port: number }).port;
  });
  after(async () => {
    await ctx?.close();
    await new Promise((resolve) => listener?.close(resolve));
  });

  const runner = () => {
    const { queue, database, discoveryRepo, clock, logger, config } = ctx.deps;
    // 400 connection attempts a second: the 840 pairs below take about two seconds.
    return startDiscoveryRunner({ queue: queue as NonNullable<typeof queue>, database, repo: discoveryRepo, clock, logger, settings: { ...config.discovery, ratePerSecond: 400 } });
  };
  const job = async (id: number) => (await ctx.request({ method: 'GET', url: `/discovery/jobs/${id}`, token: ctx.adminToken })).json() as { status: string; progress: number; discovered_targets: number; started_at: string | null };
  const until = async (id: number, done: (j: Awaited<ReturnType<typeof job>>) => boolean) => {
    const deadline = Date.now() + 30_000;
    for (let j = await job(id); ; j = await job(id)) {
      if (done(j)) {
        return j;
      }
      assert.ok(Date.now() < deadline, `job ${id} is still ${JSON.stringify(j)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  test('a scan running when its worker stops is queued again, without its partial hosts, and the next worker finishes it', async () => {
    const ports = [open, ...Array.from({ length: 20 }, (_, i) => i + 1)];
    const created = await ctx.request({ method: 'POST', url: '/discovery/jobs', token: ctx.adminToken, payload: { name: 'interrupted', network_range: '127.0.0.1-127.0.0.40', scan_ports: ports } });
    const id = Number(created.json().id);
    const first = await runner();
    assert.equal((await ctx.request({ method: 'POST', url: `/discovery/jobs/${id}/start`, token: ctx.adminToken })).statusCode, 200);
    await until(id, (j) => j.status === 'running' && j.progress > 0);
    await first();
    const requeued = await job(id);
    assert.deepEqual([requeued.status, requeued.started_at, requeued.progress, requeued.discovered_targets], ['queued', null, 0, 0]);
    const second = await runner();
    try {
      const finished = await until(id, (j) => !['queued', 'running'].includes(j.status));
      assert.deepEqual([finished.status, finished.progress, finished.discovered_targets], ['completed', 100, 1]);
    } finally {
      await second();
    }
  });
});
