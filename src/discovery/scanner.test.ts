/**
 * The TCP connect scanner against real listeners on loopback: the test sshd, refused ports, the
 * 127.0.0.0/8 range, `localhost`, concurrency, rate, cancellation and progress. Silently dropped
 * ports are loopback too, and need no privilege: a small python3 child listens with backlog 0 and
 * fills each accept queue with one connection it never accepts, so Linux drops every further SYN
 * without an answer and connects to those ports time out. The kernel's own counters (SYNs each of
 * those listeners dropped, SYN-SENT sockets towards them) check the retry and the concurrency bound.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import { waitFor } from '../../test/procs.ts';
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

/**
 * Listens, backlog 0, on each of `count` free ports of `argv[1]` and fills every accept queue with
 * one connection it never accepts: Linux then drops each new SYN (`sk_acceptq_is_full`), with no
 * SYN-ACK and no RST. One more port is bound without listening (refused, and no one else takes it).
 * Prints the ports as JSON, then holds everything until its stdin closes.
 */
const DROP_LISTENERS_PY = `
import json, socket, sys
address, keep, dropped = sys.argv[1], [], []
for _ in range(int(sys.argv[2])):
    listener = socket.socket()
    listener.bind((address, 0))
    listener.listen(0)
    keep += [listener, socket.create_connection(listener.getsockname(), timeout=5)]
    dropped.append(listener.getsockname()[1])
refused = socket.socket()
refused.bind((address, 0))
print(json.dumps({"dropped": dropped, "refused": refused.getsockname()[1]}), flush=True)
sys.stdin.read()
`;

/** Ports on a loopback address of the test's own that silently drop connects, and one that refuses them. */
interface DropListeners {
  address: string;
  dropped: number[];
  refused: number;
  /** SYNs each listener has dropped so far (its `sk_drops`, from `ss -m`), by port. */
  drops(): Promise<Map<number, number>>;
  /** SYN-SENT sockets towards `address`, as "local port>remote port". */
  synSent(): Promise<string[]>;
  stop(): Promise<void>;
}

/** A TcpExt counter of this network namespace (/proc/net/netstat). */
function tcpExt(name: string): number {
  const [names, values] = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
  return Number(values?.split(' ')[names?.split(' ').indexOf(name) ?? -1]);
}

/** Listening sockets on `address`: port → [accept queue length, its limit, SYNs dropped]. */
async function listeners(address: string): Promise<Map<number, [number, number, number]>> {
  const { stdout } = await run('ss', ['-Hltnm', 'src', address]);
  const rows = stdout.matchAll(/^LISTEN\s+(\d+)\s+(\d+)\s+\S+:(\d+)\s+\S+\s+skmem:\([^)]*\bd(\d+)\)/gm);
  return new Map([...rows].map(([, queued, limit, port, drops]) => [Number(port), [Number(queued), Number(limit), Number(drops)]]));
}

/** SYN-SENT sockets towards `address`, as "local port>remote port". */
async function synSentTo(address: string): Promise<string[]> {
  const { stdout } = await run('ss', ['-Htn', 'state', 'syn-sent', 'dst', address]);
  return [...stdout.matchAll(/:(\d+)\s+\S+:(\d+)\s*$/gm)].map(([, local, remote]) => `${local}>${remote}`);
}

/** Starts DROP_LISTENERS_PY with `count` dropping ports; throws, saying why, where that is impossible. */
async function startDropListeners(count: number): Promise<DropListeners> {
  // An address per test process, so SYN-SENT counts are this run's even if another run of this file is going.
  const address = `127.9.${Math.floor(process.pid / 250) % 250}.${(process.pid % 250) + 1}`;
  const child = spawn('python3', ['-c', DROP_LISTENERS_PY, address, String(count)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const stop = async () => {
    child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(timer);
  };
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const spawned = new Promise<void>((resolve, reject) => child.once('error', reject).once('spawn', resolve));
  try {
    await spawned;
    const line = await waitFor('the listeners to be ready', () => {
      if (child.exitCode !== null) {
        throw new Error(`python3 exited with ${child.exitCode}`);
      }
      return output.includes('\n') && output.split('\n')[0];
    }, 10_000, 50);
    const { dropped, refused } = JSON.parse(line) as { dropped: number[]; refused: number };
    const full = (ls: Map<number, [number, number, number]>) => dropped.every((p) => (ls.get(p)?.[0] ?? 0) > (ls.get(p)?.[1] ?? 0));
    await waitFor('every accept queue to be full', async () => full(await listeners(address)), 5_000, 50);
    const drops = async () => new Map([...(await listeners(address))].map(([port, [, , n]]) => [port, n]));
    return { address, dropped, refused, drops, synSent: () => synSentTo(address), stop };
  } catch (e) {
    await stop();
    throw new Error(`cannot set up the dropping listeners (needs python3 and ss from iproute2): ${(e as Error).message}\n${output}`);
  }
}

describe('findOpenPorts against silently dropped ports (full accept queues on loopback)', () => {
  let drop: DropListeners;
  before(async () => {
    drop = await startDropListeners(40);
  });
  after(async () => drop?.stop());

  /** Runs `scan`, counting the SYNs the listeners on `ports` drop meanwhile: `attempts` each, give or take the kernel's own retransmissions. */
  async function assertSynsPerPort<T>(ports: number[], attempts: number, scan: () => Promise<T>): Promise<T> {
    const [before, retransmitted] = [await drop.drops(), tcpExt('TCPSynRetrans')];
    const result = await scan();
    const after = await drop.drops();
    const syns = ports.map((p) => (after.get(p) ?? NaN) - (before.get(p) ?? NaN));
    // The kernel retransmits a SYN only 1 s after sending it, long past the scan's 300 ms timeout,
    // unless this process stalled that long; any surplus must be such (system-wide counted) retransmissions.
    const surplus = syns.reduce((a, b) => a + b, 0) - attempts * ports.length;
    const extra = tcpExt('TCPSynRetrans') - retransmitted;
    assert.ok(syns.every((n) => n >= attempts) && surplus <= extra, `SYNs dropped per port: ${syns} (expected ${attempts}); SYNs retransmitted: ${extra}`);
    return result;
  }

  test('a dropped port times out, is retried once, and counts as filtered — a refused one is closed at once', async () => {
    const ports = drop.dropped.slice(0, 2);
    const result = await assertSynsPerPort(ports, 2, () => findOpenPorts([drop.address], [...ports, drop.refused], { timeoutMs: 300 }));
    assert.deepEqual(result.open, []);
    assert.equal(result.filtered, 2);
    assert.equal(result.attempts, 2 * 2 + 1, 'two attempts per dropped port, one for the refused port');
    const third = drop.dropped.slice(2, 3);
    const once = await assertSynsPerPort(third, 1, () => findOpenPorts([drop.address], third, { timeoutMs: 300, retries: 0 }));
    assert.deepEqual([once.filtered, once.attempts], [1, 1]);
  });

  test('pending connects never exceed the concurrency, as the kernel sees them', async () => {
    // 40 dropped ports, 8 at a time, 600 ms each: 3 s of connects for the sampler (one `ss` per sample) to see, even on a loaded machine.
    // `ss` walks the socket table with no snapshot: on a loaded machine a walk can see a slot's
    // closed socket and its successor both. A socket in two samples lived all the time between
    // them, so the sockets two consecutive samples share were pending at once.
    let [peak, previous] = [0, new Set<string>()];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const current = await drop.synSent();
        peak = Math.max(peak, current.filter((s) => previous.has(s)).length);
        previous = new Set(current);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const result = await findOpenPorts([drop.address], drop.dropped, { concurrency: 8, timeoutMs: 600, retries: 0 });
    sampling = false;
    await sampler;
    assert.deepEqual([result.filtered, result.maxInFlight], [40, 8]);
    assert.ok(peak > 1 && peak <= 8, `peak ${peak} SYN-SENT sockets`);
  });

  test('an abort destroys the pending sockets at once', async () => {
    const controller = new AbortController();
    const pending = findOpenPorts([drop.address], drop.dropped.slice(0, 20), { timeoutMs: 10_000, signal: controller.signal });
    await waitFor('20 connects pending', async () => (await drop.synSent()).length === 20, 5_000, 20);
    const started = Date.now();
    controller.abort();
    const result = await pending;
    // Far below the 10 s timeout, with room for a loaded machine.
    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
    assert.deepEqual([result.canceled, result.probed, result.open], [true, 0, []]);
    assert.deepEqual(await drop.synSent(), [], 'no socket left connecting');
  });
});
