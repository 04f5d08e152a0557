/**
 * Discovery results and import beyond SSH, through the API on loopback: a WinRM listener on 5985
 * (named from its http.sys answer) and a silent one on 5986 (named from the port) become winrm
 * targets, the latter with TLS; an HTTP server becomes an http target; a host with nothing to
 * manage it through is skipped; names are made unique; no credential is guessed; the results say
 * what each found host became. Also: the default ports, and the job list.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { DEFAULT_PORTS } from './discovery.service.ts';

interface Found {
  id: number;
  host: string;
  services: string[];
  ports: Array<{ port: number; service: string }>;
  existing_target_id: number | null;
  import_status: string;
}

describe('discovery import of WinRM, HTTP and unmanageable hosts', () => {
  let ctx: TestContext;
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  let webPort = 0;
  let silentPort = 0;
  const listen = async (server: Server, host: string, port = 0) => {
    servers.push(server);
    // The silent listeners never end what they accept: the test does, so that they can close.
    server.on('connection', (socket: Socket) => sockets.add(socket.on('error', () => {})));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
    return (server.address() as { port: number }).port;
  };
  const call = async (method: 'GET' | 'POST', url: string, payload?: Record<string, unknown>) => {
    const res = await ctx.request({ method, url, token: ctx.adminToken, payload });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Record<string, unknown>;
  };

  before(async () => {
    ctx = await createTestContext({ worker: true });
    const httpApi = createHttpServer((_req, res) => res.writeHead(405, { server: 'Microsoft-HTTPAPI/2.0', 'content-length': 0 }).end());
    await listen(httpApi, '127.0.0.71', 5985);
    // Accepts on 5986 and never says a word: neither TLS nor HTTP identifies it, the port does.
    await listen(createServer(() => {}), '127.0.0.72', 5986);
    webPort = await listen(createHttpServer((_req, res) => res.writeHead(200, { server: 'nginx/1.22.1', 'content-length': 0 }).end()), '127.0.0.73');
    silentPort = await listen(createServer(() => {}), '127.0.0.74');
  });
  after(async () => {
    await ctx?.close();
    sockets.forEach((socket) => socket.destroy());
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });

  test('winrm on 5985 and on 5986 (TLS), http, a skip; names made unique; no credential guessed; results show each outcome', async () => {
    const taken = (await call('POST', '/targets', { name: '127.0.0.71', host: '127.0.0.99', port: 22, protocol: 'ssh', os_type: 'linux' })).id;
    const created = await call('POST', '/discovery/jobs', { name: unique('mixed'), network_range: '127.0.0.71-127.0.0.74', scan_ports: [5985, 5986, webPort, silentPort] });
    await call('POST', `/discovery/jobs/${created.id}/start`);
    const deadline = Date.now() + 30_000;
    while (!['completed', 'failed', 'canceled'].includes(String((await call('GET', `/discovery/jobs/${created.id}`)).status))) {
      assert.ok(Date.now() < deadline, 'the scan finished');
      await new Promise((r) => setTimeout(r, 100));
    }
    const { targets } = (await call('GET', `/discovery/jobs/${created.id}/results`)) as { targets: Found[] };
    const services = Object.fromEntries(targets.map((t) => [t.host, t.ports.map((p) => `${p.port}/${p.service}`)]));
    assert.deepEqual(services['127.0.0.71'], ['5985/winrm']);
    assert.deepEqual(services['127.0.0.72'], ['5986/winrm']);
    assert.deepEqual(services['127.0.0.73'], [`${webPort}/http`]);
    assert.equal(services['127.0.0.74']?.length, 1);
    assert.deepEqual(targets.map((t) => t.import_status), ['new', 'new', 'new', 'new']);

    const imported = await call('POST', '/discovery/import', { discovery_job_id: created.id, target_ids: targets.map((t) => t.id) });
    assert.deepEqual([imported.imported, imported.skipped], [3, 1]);
    const byHost = new Map((imported.targets as Array<{ host: string; target_id: number | null; reason?: string }>).map((t) => [t.host, t]));
    assert.match(String(byHost.get('127.0.0.74')?.reason), /no ssh, winrm or http service found/);
    const target = async (host: string) => call('GET', `/targets/${byHost.get(host)?.target_id}`);
    const [win, winTls, web] = await Promise.all(['127.0.0.71', '127.0.0.72', '127.0.0.73'].map(target));
    assert.deepEqual([win?.name, win?.protocol, win?.port, win?.use_tls ?? false, win?.credential_id ?? null], ['127.0.0.71-2', 'winrm', 5985, false, null]);
    assert.deepEqual([winTls?.protocol, winTls?.port, winTls?.use_tls, winTls?.credential_id ?? null], ['winrm', 5986, true, null]);
    assert.deepEqual([web?.protocol, web?.port, web?.credential_id ?? null], ['http', webPort, null]);
    assert.notEqual(byHost.get('127.0.0.71')?.target_id, taken);

    const after = (await call('GET', `/discovery/jobs/${created.id}/results`)) as { targets: Found[] };
    const status = Object.fromEntries(after.targets.map((t) => [t.host, [t.import_status, t.existing_target_id]]));
    assert.deepEqual(status['127.0.0.71'], ['imported', byHost.get('127.0.0.71')?.target_id]);
    assert.equal(status['127.0.0.74']?.[0], 'skipped');
  });

  test('a job without scan_ports scans the default ports; the list shows it, newest first', async () => {
    const created = await call('POST', '/discovery/jobs', { name: unique('defaults'), network_range: '127.0.0.1' });
    const job = await call('GET', `/discovery/jobs/${created.id}`);
    assert.deepEqual(job.ports, DEFAULT_PORTS);
    assert.deepEqual(DEFAULT_PORTS, [22, 80, 443, 3389, 5985, 5986]);
    const list = await call('GET', '/discovery/jobs');
    const jobs = list.jobs as Array<{ id: number; name: string; status: string; progress: number; discovered_targets: number }>;
    assert.deepEqual(jobs[0], { id: created.id, name: created.name, status: 'queued', progress: 0, discovered_targets: 0 });
    assert.ok(Number(list.total) >= 2);
  });

  test('one machine found under one name at two addresses (localhost: 127.0.0.1 and ::1) imports as one target', async () => {
    const created = await call('POST', '/discovery/jobs', { name: unique('dual'), network_range: 'localhost' });
    const ports = [{ port: 22, service: 'ssh', banner: 'SSH-2.0-OpenSSH_9.2p1 Debian-2' }];
    // What a scan of `localhost` records where the name has both addresses (as the runner saves it).
    await ctx.deps.discoveryRepo.saveHosts(Number(created.id), ['127.0.0.1', '::1'].map((host) => ({ host, hostname: 'localhost', os: 'linux', osHint: 'Debian', services: ['ssh'], ports })));
    const { targets } = (await call('GET', `/discovery/jobs/${created.id}/results`)) as { targets: Found[] };
    assert.deepEqual(targets.map((t) => t.host), ['127.0.0.1', '::1']);
    const imported = await call('POST', '/discovery/import', { discovery_job_id: created.id, target_ids: targets.map((t) => t.id) });
    assert.deepEqual([imported.imported, imported.skipped], [1, 1]);
    const [first, second] = imported.targets as Array<{ host: string; import_status: string; target_id: number; reason?: string }>;
    assert.deepEqual([first?.host, first?.import_status], ['127.0.0.1', 'imported']);
    assert.deepEqual([second?.host, second?.import_status, second?.target_id], ['::1', 'skipped', first?.target_id]);
    assert.match(String(second?.reason), /already a target/);
  });
});

describe('an ad hoc scan in a process without the background queue', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await createTestContext();
  });
  after(() => ctx?.close());

  test('is refused, and leaves no job behind', async () => {
    const res = await ctx.request({ method: 'POST', url: '/discovery/scan', token: ctx.adminToken, payload: { network_range: '127.0.0.1', ports: [22] } });
    assert.equal(res.statusCode, 503, res.body);
    assert.match(res.json().error.message, /background queue is not running/);
    const list = (await ctx.request({ method: 'GET', url: '/discovery/jobs', token: ctx.adminToken })).json();
    assert.equal(list.total, 0);
  });
});
