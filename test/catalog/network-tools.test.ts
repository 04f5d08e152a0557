/**
 * network-tools steps run on a real sshd as the test user, against loopback only: ping and
 * traceroute to 127.0.0.1/localhost, a TCP listener of the test's own, a DNS server of the test's
 * own on 127.0.0.1 (and /etc/hosts for the system resolver), and a local HTTP server. ping,
 * traceroute and dig are installed with apt-get when missing (as .ci/run does).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { freePort, type Sshd, sshdSkip, startSshd } from '../sshd.ts';
import { type DnsServer, startDnsServer } from './dns-server.ts';
import { assertEveryLinuxStepRan, assertExit, createStepRunner, type StepRunner } from './ssh-runner.ts';
import { startWebServer, type WebServer } from './web-server.ts';

const LIB = 'network-tools';
const TOOLS = { ping: 'iputils-ping', traceroute: 'traceroute', dig: 'dnsutils', curl: 'curl' };

/** Installs the packages of missing tools (Debian; the test host is root, like CI). */
function ensureTools(): void {
  const missing = Object.entries(TOOLS)
    .filter(([tool]) => execFileSync('sh', ['-c', `PATH=$PATH:/usr/sbin:/sbin command -v ${tool} || true`], { encoding: 'utf8' }).trim() === '')
    .map(([, pkg]) => pkg);
  if (missing.length > 0) {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
}

describe('network-tools on a real sshd (loopback only)', { skip: sshdSkip() }, () => {
  let sshd: Sshd;
  let runner: StepRunner;
  let dns: DnsServer;
  let web: WebServer;
  let listener: Server;
  let accepted = 0;
  const run = (step: string, params: Record<string, unknown>) => runner.run(LIB, step, params);

  before(async () => {
    ensureTools();
    sshd = await startSshd();
    runner = await createStepRunner(sshd);
    dns = await startDnsServer({
      localhost: [{ type: 'A', address: '127.0.0.1' }],
      'api.localhost': [
        { type: 'A', address: '127.0.0.2' },
        { type: 'A', address: '127.0.0.3' },
        { type: 'TXT', text: 'v=oc1 owner=ops' },
        { type: 'MX', preference: 10, exchange: 'mail.localhost' },
      ],
    });
    web = await startWebServer();
    listener = createServer((socket) => {
      accepted++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    runner?.close();
    await sshd?.stop();
    await dns?.close();
    await web?.close();
    await new Promise((r) => (listener ? listener.close(r) : r(undefined)));
  });

  test('ping_test pings loopback and reports loss and round trips', async () => {
    const res = await run('ping_test', { host: '127.0.0.1', count: 2 });
    assertExit(res, 0);
    const o = res.outputs;
    assert.deepEqual([o.address, o.packets_sent, o.packets_received, o.packet_loss_percent, o.reachable], ['127.0.0.1', '2', '2', '0', 'true']);
    for (const rtt of [o.rtt_min_ms, o.rtt_avg_ms, o.rtt_max_ms]) {
      assert.match(rtt ?? '', /^\d+\.\d+$/);
    }
    assert.ok(Number(o.rtt_min_ms) <= Number(o.rtt_max_ms));
    assert.equal((await run('ping_test', { host: 'localhost', count: 1 })).outputs.address, '127.0.0.1');

    // The 1-second deadline ends the test before 5 replies can arrive.
    const short = await run('ping_test', { host: 'localhost', count: 5, timeout_seconds: 1, min_replies: 5 });
    assertExit(short, 1);
    assert.match(short.stderr, /echo requests to localhost answered, fewer than 5/);
    for (const host of ['-f', '127.0.0.1;id', '$(id)', '']) {
      assertExit(await run('ping_test', { host }), 2);
    }
    assertExit(await run('ping_test', { host: '127.0.0.1', count: 1, min_replies: 2 }), 2);
  });

  test('port_test tells an open port from a closed one', async () => {
    const address = listener.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const before = accepted;
    const open = await run('port_test', { host: '127.0.0.1', port });
    assertExit(open, 0);
    assert.deepEqual([open.outputs.result, open.outputs.open, open.outputs.port], ['open', 'true', String(port)]);
    assert.match(open.outputs.elapsed_ms ?? '', /^\d+$/);
    assert.ok(accepted > before, 'the listener saw the connection');

    const closedPort = await freePort();
    const closed = await run('port_test', { host: 'localhost', port: closedPort });
    assertExit(closed, 1);
    assert.deepEqual([closed.outputs.result, closed.outputs.open], ['closed', 'false']);
    assert.match(closed.stderr, /expected localhost:\d+ to be open, it is closed/);
    assertExit(await run('port_test', { host: 'localhost', port: closedPort, expect: 'closed' }), 0);
    assertExit(await run('port_test', { host: '127.0.0.1', port, expect: 'closed' }), 1);
    assertExit(await run('port_test', { host: '$(id)', port }), 2);
    assertExit(await run('port_test', { host: '127.0.0.1', port: 70000 }), 2);
  });

  test('dns_lookup asks a DNS server (dig) and parses answers, NXDOMAIN and failures', async () => {
    const server = { server: '127.0.0.1', port: dns.port, timeout_seconds: 2 };
    const a = await run('dns_lookup', { name: 'api.localhost', ...server });
    assertExit(a, 0);
    assert.deepEqual([a.outputs.status, a.outputs.answer_count, a.outputs.answers, a.outputs.first_answer], ['NOERROR', '2', '127.0.0.2,127.0.0.3', '127.0.0.2']);
    assert.equal(a.outputs.server, `127.0.0.1#${dns.port}`);
    assert.match(a.outputs.query_time_ms ?? '', /^\d+$/);
    assert.equal((await run('dns_lookup', { name: 'api.localhost', record_type: 'TXT', ...server })).outputs.answers, '"v=oc1 owner=ops"');
    assert.equal((await run('dns_lookup', { name: 'api.localhost', record_type: 'MX', ...server })).outputs.answers, '10 mail.localhost.');

    const nx = await run('dns_lookup', { name: 'missing.localhost', ...server });
    assertExit(nx, 1);
    assert.deepEqual([nx.outputs.status, nx.outputs.answer_count], ['NXDOMAIN', '0']);
    assert.match(nx.stderr, /no A record for missing.localhost/);
    assertExit(await run('dns_lookup', { name: 'missing.localhost', require_answer: false, ...server }), 0);
    assert.ok(dns.questions.includes('api.localhost TXT') && dns.questions.includes('missing.localhost A'), dns.questions.join(', '));

    const silent = await run('dns_lookup', { name: 'localhost', server: '127.0.0.1', port: await freePort(), timeout_seconds: 1 });
    assertExit(silent, 1);
    assert.match(silent.stderr, /no answer from 127.0.0.1/);
    for (const name of ['-x', 'a b', '$(id)']) {
      assertExit(await run('dns_lookup', { name, ...server }), 2);
    }
    assertExit(await run('dns_lookup', { name: 'localhost', server: '-h', port: dns.port }), 2);
  });

  test('dns_lookup through the system resolver reads /etc/hosts', async () => {
    const res = await run('dns_lookup', { name: 'localhost', resolver: 'system' });
    assertExit(res, 0);
    assert.deepEqual([res.outputs.answers, res.outputs.answer_count], ['127.0.0.1', '1']);
    assertExit(await run('dns_lookup', { name: 'localhost', resolver: 'system', record_type: 'MX' }), 2);
  });

  test('http_check checks status, content and redirects with curl', async () => {
    const ok = await run('http_check', { url: `${web.url}/health`, contains: 'service healthy' });
    assertExit(ok, 0);
    assert.deepEqual([ok.outputs.status_code, ok.outputs.ok, ok.outputs.body_bytes], ['200', 'true', '20']);
    assert.match(ok.outputs.response_time_ms ?? '', /^\d+$/);
    const text = await run('http_check', { url: `${web.url}/health`, contains: 'degraded' });
    assertExit(text, 1);
    assert.match(text.stderr, /does not contain the expected text/);

    const down = await run('http_check', { url: `${web.url}/status/503` });
    assertExit(down, 1);
    assert.equal(down.outputs.status_code, '503');
    assertExit(await run('http_check', { url: `${web.url}/status/503`, expected_status: 503 }), 0);

    assert.equal((await run('http_check', { url: `${web.url}/redirect` })).outputs.status_code, '302');
    const followed = await run('http_check', { url: `${web.url}/redirect`, follow_redirects: true });
    assertExit(followed, 0);
    assert.equal(followed.outputs.final_url, `${web.url}/health`);
    assertExit(await run('http_check', { url: `${web.url}/redirect-to-file`, follow_redirects: true }), 1);

    const refused = await run('http_check', { url: `http://127.0.0.1:${await freePort()}/` });
    assertExit(refused, 1);
    assert.equal(refused.outputs.status_code, '0');
    for (const url of ['file:///etc/passwd', '--config=/etc/passwd', 'ftp://127.0.0.1/']) {
      assertExit(await run('http_check', { url }), 2);
    }
  });

  test('traceroute reaches loopback in one hop', async () => {
    for (const host of ['127.0.0.1', 'localhost']) {
      const res = await run('traceroute', { host, max_hops: 3, wait_seconds: 1 });
      assertExit(res, 0);
      assert.deepEqual([res.outputs.destination, res.outputs.hop_count, res.outputs.hop_1, res.outputs.last_hop, res.outputs.reached], ['127.0.0.1', '1', '127.0.0.1', '127.0.0.1', 'true']);
    }
    assertExit(await run('traceroute', { host: '-I' }), 2);
    assertExit(await run('traceroute', { host: '127.0.0.1', max_hops: 65 }), 2);
  });

  test('every Linux step of network-tools ran', () => assertEveryLinuxStepRan(runner, LIB));
});
