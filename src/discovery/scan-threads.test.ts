/**
 * Scans shared by worker threads: the concurrency bound holds across the threads, and a failure in
 * one place (here `onProgress` throwing) stops every thread and rejects the scan instead of
 * escaping as an uncaught exception.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { findOpenPorts } from './scanner.ts';

const hosts = Array.from({ length: 40 }, (_, i) => `127.0.0.${i + 1}`);
const ports = Array.from({ length: 200 }, (_, i) => i + 1);

describe('scan threads', () => {
  let server: Server;
  let open = 0;
  before(async () => {
    server = createServer((s) => s.destroy());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.9', resolve));
    open = (server.address() as { port: number }).port;
  });
  after(() => new Promise((resolve) => server.close(resolve)));

  test('threads share the concurrency exactly: 5 over 2 threads is 3 + 2, 1 over 4 threads is one thread', async () => {
    const five = await findOpenPorts(hosts, [...ports, open], { threads: 2, concurrency: 5 });
    assert.equal(five.maxInFlight, 5);
    assert.deepEqual(five.open, [{ host: '127.0.0.9', port: open }]);
    const one = await findOpenPorts(hosts.slice(0, 10), [open, 1, 2], { threads: 4, concurrency: 1 });
    assert.deepEqual([one.maxInFlight, one.probed, one.open], [1, 30, [{ host: '127.0.0.9', port: open }]]);
  });

  test('onProgress throwing stops every thread and rejects the scan; nothing escapes as an uncaught exception', async () => {
    const uncaught: unknown[] = [];
    const record = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', record);
    let calls = 0;
    try {
      const scan = findOpenPorts(hosts, Array.from({ length: 2000 }, (_, i) => i + 1), {
        threads: 2,
        ratePerSecond: 4000,
        onProgress: () => {
          calls++;
          throw new Error('progress sink failed');
        },
      });
      await assert.rejects(scan, /progress sink failed/);
      const seen = calls;
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(calls, seen, 'no thread reports after the scan rejected');
      assert.deepEqual(uncaught, []);
    } finally {
      process.off('uncaughtException', record);
    }
  });
});
