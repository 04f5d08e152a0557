/**
 * The TCP connect scanner against real listeners on loopback: the test sshd, refused ports, the
 * 127.0.0.0/8 range, `localhost`, concurrency, rate, cancellation and progress. Silently dropped
 * ports need a network namespace of the test's own (root and `ip`): a veth pair into it, and an
 * `ip rule … blackhole` there that drops every TCP reply from a range of ports, so connects to
 * them time out. The kernel's own counters (SYNs received in the namespace, SYN-SENT sockets on
 * this side) check the retry and the concurrency bound. Skipped, with the reason, where that is not possible.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { freePort, sshdSkip, startSshd } from '../../test/sshd.ts';
import { findOpenPorts } from './scanner.ts';

const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

/** A listener on `host` (any free port) that counts the connections it accepts. */
async function listener(host = '127.0.0.1'): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const server = createServer((s) => {
    accepted++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  servers.push(server);
  return { port: (server.address() as { port: number }).port, accepted: () => accepted };
}

const loopbackRange = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `127.0.0.${from + i}`);

describe('findOpenPorts on loopback', () => {
  test('finds the test sshd on its non-standard port, and nothing on refused ports', { skip: sshdSkip() }, async () => {
    const sshd = await startSshd();
    try {
      const closed = [await freePort(), await freePort()];
      const result = await findOpenPorts([sshd.host], [closed[0] as number, sshd.port, closed[1] as number]);
      assert.deepEqual(result.open, [{ host: sshd.host, port: sshd.port }]);
      assert.deepEqual([result.probed, result.total, result.canceled, result.filtered], [3, 3, false, 0]);
      assert.equal(result.attempts, 3, 'a refusal is not retried');
    } finally {
      await sshd.stop();
    }
  });

  test('scans 127.0.0.1–127.0.0.20 and finds the one address a listener is bound to', async () => {
    const { port, accepted } = await listener('127.0.0.7');
    const result = await findOpenPorts(loopbackRange(1, 20), [port]);
    assert.deepEqual(result.open, [{ host: '127.0.0.7', port }]);
    assert.equal(result.probed, 20);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(accepted(), 1, 'one connection, destroyed after connect');
  });

  test('the raw TCP handle and net.Socket find the same open pairs (the raw path is the default for IP literals)', async () => {
    const [a, b] = await Promise.all([listener('127.0.0.3'), listener('127.0.0.9')]);
    const closed = await freePort();
    const hosts = loopbackRange(1, 12);
    const viaRaw = await findOpenPorts(hosts, [a.port, b.port, closed]);
    const viaSocket = await findOpenPorts(hosts, [a.port, b.port, closed], { socketConnect: true });
    assert.deepEqual(viaRaw.open, [{ host: '127.0.0.3', port: a.port }, { host: '127.0.0.9', port: b.port }]);
    assert.deepEqual(viaSocket.open, viaRaw.open);
    assert.deepEqual([viaRaw.probed, viaRaw.filtered], [36, 0]);
  });

  test('worker threads share a scan: the same open pairs as one thread, progress to the total, and a cancel stops them all', async () => {
    const [a, b] = await Promise.all([listener('127.0.0.2'), listener('127.0.0.30')]);
    const hosts = loopbackRange(1, 40);
    const progress: number[] = [];
    const threaded = await findOpenPorts(hosts, [a.port, b.port, 1, 2, 3], { threads: 2, onProgress: (done, total) => progress.push(done / total) });
    const single = await findOpenPorts(hosts, [a.port, b.port, 1, 2, 3], { threads: 1 });
    assert.deepEqual(threaded.open, single.open);
    assert.deepEqual(threaded.open, [{ host: '127.0.0.2', port: a.port }, { host: '127.0.0.30', port: b.port }]);
    assert.deepEqual([threaded.probed, threaded.total], [200, 200]);
    assert.equal(progress.at(-1), 1);

    const stop = new AbortController();
    const started = performance.now();
    const pending = findOpenPorts(loopbackRange(1, 254), Array.from({ length: 1024 }, (_, i) => i + 1), { threads: 2, ratePerSecond: 2000, signal: stop.signal });
    setTimeout(() => stop.abort(), 300);
    const canceled = await pending;
    assert.equal(canceled.canceled, true);
    assert.ok(canceled.probed < canceled.total);
    assert.ok(performance.now() - started < 5000, 'stopped promptly');
  });

  test('takes a host name (localhost) and reports it as given; rejects a port out of range', async () => {
    const { port } = await listener();
    const result = await findOpenPorts(['localhost', '127.0.0.1'], [port]);
    assert.deepEqual(result.open, [{ host: 'localhost', port }, { host: '127.0.0.1', port }]);
    await assert.rejects(findOpenPorts(['127.0.0.1'], [0]), RangeError);
  });

  test('2,000 probes with concurrency 50: never more than 50 sockets, and progress reaches the total', async () => {
    const a = await listener('127.0.0.1');
    const b = await listener('127.0.0.2');
    const ports = [a.port, b.port, ...Array.from({ length: 48 }, (_, i) => 1 + i)];
    const calls: Array<[number, number]> = [];
    const result = await findOpenPorts(loopbackRange(1, 40), ports, { concurrency: 50, onProgress: (done, total) => calls.push([done, total]) });
    assert.equal(result.probed, 2_000);
    assert.ok(result.maxInFlight <= 50 && result.maxInFlight > 1, `max in flight ${result.maxInFlight}`);
    for (const pair of [{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.2', port: b.port }]) {
      assert.ok(result.open.some((o) => o.host === pair.host && o.port === pair.port), `${pair.host}:${pair.port} open`);
    }
    assert.deepEqual(calls.at(-1), [2_000, 2_000]);
    assert.ok(calls.every(([done], i) => i === 0 || done >= (calls[i - 1]?.[0] ?? 0)), 'progress never goes back');
    assert.ok(calls.length < 100, `throttled: ${calls.length} calls`);
  });

  test('a rate of 200/s spaces 300 attempts over more than a second', async () => {
    const started = performance.now();
    const seen: Array<[number, number]> = [];
    const result = await findOpenPorts(loopbackRange(1, 30), Array.from({ length: 10 }, (_, i) => 1 + i), {
      ratePerSecond: 200,
      onProgress: (done) => seen.push([performance.now() - started, done]),
    });
    assert.equal(result.attempts, 300);
    assert.ok(performance.now() - started >= 1_000, `took ${Math.round(performance.now() - started)} ms`);
    // Never ahead of the rate (one attempt of slack for timer granularity).
    assert.ok(seen.every(([ms, done]) => done <= (200 * ms) / 1_000 + 2), JSON.stringify(seen));
  });

  test('an abort mid-scan resolves promptly with what was found, marked canceled', async () => {
    const { port } = await listener();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const started = Date.now();
    const result = await findOpenPorts(['127.0.0.1'], [port, ...Array.from({ length: 5_000 }, (_, i) => 1 + i)], { ratePerSecond: 500, signal: controller.signal });
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
    assert.equal(result.canceled, true);
    assert.ok(result.probed > 0 && result.probed < result.total, `probed ${result.probed} of ${result.total}`);
    assert.deepEqual(result.open[0], { host: '127.0.0.1', port });
    const early = await findOpenPorts(['127.0.0.1'], [port], { signal: AbortSignal.abort() });
    assert.deepEqual([early.canceled, early.probed, early.attempts], [true, 0, 0]);
  });
});

const run = promisify(execFile);

/** A namespace of the test's own whose TCP answers from `dropFrom`–`dropTo` vanish, reached through a veth pair. */
interface DropNamespace {
  address: string;
  dropFrom: number;
  dropTo: number;
  /** TCP segments the namespace has received (each connect attempt is one SYN). */
  inSegs(): Promise<number>;
  /** SYN-SENT sockets on this side towards the namespace. */
  synSent(): Promise<number>;
  remove(): void;
}

/** Why a drop namespace cannot be made here, or undefined. */
function namespaceUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) {
    return 'not root: cannot create a network namespace';
  }
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'iproute2 (ip, ss) not installed';
  }
  return undefined;
}

function createDropNamespace(): DropNamespace {
  const id = process.pid % 100_000;
  const [ns, outer, inner] = [`oc-scan-${id}`, `ocs${id}h`, `ocs${id}n`];
  const subnet = `10.200.${id % 250}`;
  if (execFileSync('ip', ['-4', 'addr'], { encoding: 'utf8' }).includes(` ${subnet}.`)) {
    throw new Error(`${subnet}.0/30 is already in use here`);
  }
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const remove = () => {
    for (const args of [['netns', 'del', ns], ['link', 'del', outer]]) {
      try {
        ip(...args);
      } catch {
        // Already gone: deleting the namespace takes the veth pair with it.
      }
    }
  };
  const [dropFrom, dropTo] = [20_000, 20_099];
  try {
    ip('netns', 'add', ns);
    ip('link', 'add', outer, 'type', 'veth', 'peer', 'name', inner, 'netns', ns);
    ip('addr', 'add', `${subnet}.1/30`, 'dev', outer);
    ip('link', 'set', outer, 'up');
    ip('-n', ns, 'addr', 'add', `${subnet}.2/30`, 'dev', inner);
    ip('-n', ns, 'link', 'set', inner, 'up');
    // The SYN arrives; the SYN-ACK or RST it would get back is routed into a black hole.
    ip('-n', ns, 'rule', 'add', 'ipproto', 'tcp', 'sport', `${dropFrom}-${dropTo}`, 'blackhole');
  } catch (e) {
    remove();
    throw e;
  }
  const inSegs = async () => {
    const { stdout } = await run('ip', ['netns', 'exec', ns, 'cat', '/proc/net/snmp']);
    const [names, values] = stdout.split('\n').filter((l) => l.startsWith('Tcp:'));
    return Number(values?.split(' ')[names?.split(' ').indexOf('InSegs') ?? -1]);
  };
  const synSent = async () => (await run('ss', ['-Htn', 'state', 'syn-sent', 'dst', `${subnet}.2`])).stdout.split('\n').filter(Boolean).length;
  return { address: `${subnet}.2`, dropFrom, dropTo, inSegs, synSent, remove };
}

describe('findOpenPorts against silently dropped ports (own network namespace)', () => {
  const unavailable = namespaceUnavailable();
  let drop: DropNamespace | undefined;
  let reason = unavailable ?? '';
  before(() => {
    if (!unavailable) {
      try {
        drop = createDropNamespace();
      } catch (e) {
        reason = `cannot set up the namespace: ${(e as Error).message}`;
      }
    }
  });
  after(() => drop?.remove());

  test('a dropped port times out, is retried once, and counts as filtered — a refused one is closed at once', async (t) => {
    if (!drop) {
      return t.skip(reason);
    }
    const before = await drop.inSegs();
    const ports = [drop.dropFrom, drop.dropFrom + 1, drop.dropTo + 1];
    const result = await findOpenPorts([drop.address], ports, { timeoutMs: 300 });
    assert.deepEqual(result.open, []);
    assert.equal(result.filtered, 2);
    assert.equal(result.attempts, 2 * 2 + 1, 'two attempts per dropped port, one for the refused port');
    assert.equal((await drop.inSegs()) - before, 5, 'the namespace received one SYN per attempt');
    const once = await findOpenPorts([drop.address], [drop.dropFrom], { timeoutMs: 300, retries: 0 });
    assert.deepEqual([once.filtered, once.attempts], [1, 1]);
  });

  test('pending connects never exceed the concurrency, as the kernel sees them', async (t) => {
    if (!drop) {
      return t.skip(reason);
    }
    // 40 dropped ports, 8 at a time, 600 ms each: 3 s of connects for the sampler (one `ss` per sample) to see, even on a loaded machine.
    const ports = Array.from({ length: 40 }, (_, i) => (drop as DropNamespace).dropFrom + i);
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await (drop as DropNamespace).synSent());
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await findOpenPorts([drop.address], ports, { concurrency: 8, timeoutMs: 600, retries: 0 });
    sampling = false;
    await sampler;
    assert.deepEqual([result.filtered, result.maxInFlight], [40, 8]);
    assert.ok(peak > 1 && peak <= 8, `peak ${peak} SYN-SENT sockets`);
  });

  test('an abort destroys the pending sockets at once', async (t) => {
    if (!drop) {
      return t.skip(reason);
    }
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    const result = await findOpenPorts([drop.address], Array.from({ length: 20 }, (_, i) => (drop as DropNamespace).dropFrom + i), { timeoutMs: 10_000, signal: controller.signal });
    assert.ok(Date.now() - started < 1_000, `took ${Date.now() - started} ms`);
    assert.deepEqual([result.canceled, result.probed, result.open], [true, 0, []]);
    assert.equal(await drop.synSent(), 0, 'no socket left connecting');
  });
});
