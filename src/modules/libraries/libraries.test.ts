/**
 * Step libraries through the API: the shipped catalog installs, lists and runs its Linux steps on
 * a real sshd (directly and as job steps) with structured outputs; signed download URLs; upgrade,
 * guarded downgrade and uninstall; malicious bundles refused with nothing written.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { gzipSync } from 'fflate';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';
import { readBundle, writeBundle } from '../../libraries/bundle.ts';
import { ownLibrary, ownStep, tarWith, uploadBundle } from './libraries.fixtures.ts';

describe('step libraries', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshd: Sshd;
  let target: number;
  let now = Date.now();
  const call = (method: 'GET' | 'POST' | 'DELETE' | 'PUT', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const ok = async (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>) => {
    const res = await call(method, url, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Record<string, unknown>;
  };
  const upload = (data: Buffer, query = '') => uploadBundle(ctx, data, query);

  before(async () => {
    ctx = await createTestContext({ worker: true, clock: { now: () => new Date(now) } });
    sshd = await startSshd();
    const credential = (await ok('POST', '/credentials', { name: unique('c'), type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey })).id;
    target = (await ok('POST', '/targets', { name: unique('linux'), host: sshd.host, port: sshd.port, os_type: 'linux', protocol: 'ssh', credential_id: credential })).id as number;
  });
  after(async () => {
    await ctx?.close();
    await sshd?.stop();
  });

  test('the catalog lists the four shipped libraries; each installs and lists its steps', async () => {
    const catalog = (await ok('GET', '/catalog')).available_libraries as Array<{ id: string; installed: boolean; version: string }>;
    assert.deepEqual(catalog.map((l) => l.id), ['linux-core', 'network-tools', 'web-http', 'windows-core']);
    assert.ok(catalog.every((l) => !l.installed));
    for (const { id, version } of catalog) {
      const installed = await ok('POST', `/libraries/${id}/install`, {});
      assert.equal(installed.version, version);
      assert.match(String(installed.sha256), /^[0-9a-f]{64}$/);
    }
    const list = (await ok('GET', '/libraries')).libraries as Array<{ id: string; steps: number }>;
    assert.deepEqual(list.map((l) => l.id), ['linux-core', 'network-tools', 'web-http', 'windows-core']);
    const steps = (await ok('GET', '/libraries/linux-core/steps')).steps as Array<{ name: string }>;
    assert.ok(['get_system_info', 'disk_usage', 'service_status', 'restart_service', 'package_installed', 'tail_log'].every((n) => steps.some((s) => s.name === n)));
    assertError(await call('POST', '/libraries/linux-core/install', {}, (await ctx.createUser('operator')).token), 403, 'permission_error');
  });

  test('a step runs on a real sshd with structured outputs', async () => {
    const res = await ok('POST', '/libraries/linux-core/steps/get_system_info/execute', { parameters: { target_id: target } });
    const result = res.result as { status: string; exit_code: number; outputs: Record<string, string> };
    assert.equal(result.status, 'succeeded', JSON.stringify(res));
    assert.ok(result.outputs.hostname, JSON.stringify(result.outputs));
    assert.ok(Number(result.outputs.memory_total_kb) > 0, JSON.stringify(result.outputs));
    assert.equal(typeof res.execution_time_ms, 'number');
    assertError(await call('POST', '/libraries/linux-core/steps/nope/execute', { parameters: { target_id: target } }), 400, 'validation_error', 'step.step');
    assertError(await call('POST', '/libraries/linux-core/steps/tail_log/execute', { parameters: { target_id: target } }), 400, 'validation_error', 'step.parameters.path');
  });

  test('a step of each Linux library runs on the target through the product; a secret parameter is masked', async () => {
    const web = createServer((req, res) => res.end(`you sent ${req.headers.authorization ?? 'nothing'}\n`));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    const port = (web.address() as AddressInfo).port;
    try {
      const run = async (library: string, step: string, parameters: Record<string, unknown>) => {
        const res = await ok('POST', `/libraries/${library}/steps/${step}/execute`, { parameters: { target_id: target, ...parameters } });
        const result = res.result as { status: string; stdout: string; outputs: Record<string, string> };
        assert.equal(result.status, 'succeeded', `${library}/${step}: ${JSON.stringify(res)}`);
        return result;
      };
      assert.ok(Object.keys((await run('linux-core', 'disk_usage', { path: '/' })).outputs).length > 0);
      const port_test = await run('network-tools', 'port_test', { host: '127.0.0.1', port: sshd.port });
      assert.deepEqual([port_test.outputs.host, port_test.outputs.port, port_test.outputs.result], ['127.0.0.1', String(sshd.port), 'open'], JSON.stringify(port_test.outputs));
      assert.ok(Number(port_test.outputs.elapsed_ms) >= 0, JSON.stringify(port_test.outputs));
      const secret = 'Bearer-s3cret-token-value';
      const http = await run('web-http', 'http_request', { url: `http://127.0.0.1:${port}/`, bearer_token: secret });
      assert.deepEqual([http.outputs.status_code, http.outputs.final_url], ['200', `http://127.0.0.1:${port}/`], JSON.stringify(http.outputs));
      // The server echoes the Authorization header: it arrived, and the reply shows it masked.
      assert.match(http.stdout, /you sent Bearer \*\*\*/);
      assert.doesNotMatch(JSON.stringify(http), new RegExp(secret));
    } finally {
      web.closeAllConnections();
      await new Promise((r) => web.close(r));
    }
  });

  test('library steps in jobs: checked when saved, run with the target, outputs kept', async () => {
    const bad = await call('POST', '/jobs', { name: unique('j'), steps: [{ type: 'library', library: 'linux-core', step: 'get_system_info', parameters: { nope: 1 } }] });
    assertError(bad, 400, 'validation_error', 'steps[0].parameters.nope');
    assertError(await call('POST', '/jobs', { name: unique('j'), steps: [{ type: 'library', library: 'not-installed', step: 'x' }] }), 400, 'validation_error', 'steps[0].library');
    const job = await ok('POST', '/jobs', { name: unique('lib'), steps: [{ type: 'library', name: 'info', library: 'linux-core', step: 'get_system_info' }] });
    const queued = await ok('POST', `/jobs/${job.id}/run`, { target_ids: [target] });
    const deadline = Date.now() + 20_000;
    let run: { status: string; steps: Array<{ status: string; outputs: Record<string, string> }> };
    do {
      await new Promise((r) => setTimeout(r, 100));
      run = (await call('GET', `/job-runs/${queued.job_run_id}`)).json();
    } while (['queued', 'running'].includes(run.status) && Date.now() < deadline);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.ok(run.steps[0]?.outputs.hostname);
  });

  test('download through a signed URL; tampered or expired links are 403', async () => {
    const { download_url: url } = (await ok('POST', '/catalog/linux-core/download')) as { download_url: string };
    const path = new URL(url).pathname + new URL(url).search;
    const got = await ctx.request({ method: 'GET', url: path });
    assert.equal(got.statusCode, 200);
    assert.equal((await readBundle(got.rawPayload)).manifest.id, 'linux-core');
    // One character of the signature changed (never to itself: a signature may start with X).
    const tampered = path.replace(/signature=(.)/, (_, first: string) => `signature=${first === 'X' ? 'Y' : 'X'}`);
    assert.notEqual(tampered, path);
    assertError(await ctx.request({ method: 'GET', url: tampered }), 403, 'permission_error');
    now += 16 * 60_000;
    try {
      assertError(await ctx.request({ method: 'GET', url: path }), 403, 'permission_error');
    } finally {
      now = Date.now();
    }
  });

  test('an uploaded bundle: its SHA-256 is the uploaded bytes’ and shows in GET /libraries and /libraries/{id}; a missing dependency is refused', async () => {
    const id = unique('own-');
    const bytes = await ownLibrary(id, '1.0.0', [ownStep('hello', { type: 'command', command: 'echo hello' })]);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const up = await upload(bytes);
    assert.equal(up.statusCode, 200, up.body);
    assert.equal(up.json().sha256, sha256);
    const listed = ((await ok('GET', '/libraries')).libraries as Array<{ id: string; sha256: string; source: string }>).find((l) => l.id === id);
    assert.deepEqual([listed?.sha256, listed?.source], [sha256, 'upload']);
    assert.equal((await ok('GET', `/libraries/${id}`)).sha256, sha256);
    const needy = await upload(await ownLibrary(unique('needs-'), '1.0.0', [ownStep('x', { type: 'command', command: 'true' })], {}, { dependencies: { 'not-there': '^1.0.0' } }));
    assertError(needy, 409, 'conflict');
    assert.match(needy.json().error.message, /needs not-there \^1\.0\.0; it is not installed/);
  });

  test('upgrade by upload, downgrade only when allowed, uninstall refused while a job uses the library', async () => {
    const link = new URL(String((await ok('POST', '/catalog/web-http/download')).download_url));
    const catalogBundle = await readBundle((await ctx.request({ method: 'GET', url: link.pathname + link.search })).rawPayload);
    const newer = await writeBundle({ ...catalogBundle.manifest, version: '9.0.0' }, catalogBundle.files);
    const up = await upload(newer);
    assert.equal(up.statusCode, 200, up.body);
    assert.match(up.json().message, /Upgraded web-http 9\.0\.0/);
    assertError(await call('POST', '/libraries/web-http/install', {}), 409, 'conflict');
    const down = await call('POST', '/libraries/web-http/install?allow_downgrade=true', {});
    assert.equal(down.statusCode, 200, down.body);
    // linux-core is used by the job of the test before.
    const refused = await call('DELETE', '/libraries/linux-core');
    assertError(refused, 409, 'conflict');
    assert.match(refused.json().error.message, /Cannot uninstall linux-core: jobs use linux-core: lib\w+ \(\d+\)/);
    assert.equal((await call('DELETE', '/libraries/web-http')).statusCode, 200, 'no job uses web-http');
    assert.ok(!((await ok('GET', '/libraries')).libraries as Array<{ id: string }>).some((l) => l.id === 'web-http'));
  });

  test('malicious bundles are refused with a precise error and nothing is written', async () => {
    const rows = async () => ({
      libraries: JSON.stringify(await ctx.deps.db.selectFrom('libraries').selectAll().orderBy('id').execute()),
      versions: JSON.stringify(await ctx.deps.db.selectFrom('library_versions').select(['library_id', 'version', 'sha256']).orderBy('library_id').orderBy('version').execute()),
    });
    const before = await rows();
    const traversal = await upload(Buffer.from(gzipSync(tarWith('../evil.sh', Buffer.from('rm -rf /')))));
    assertError(traversal, 400, 'validation_error', 'bundle');
    assert.match(traversal.json().error.message, /\.\.\/evil\.sh/);
    assert.equal(traversal.json().error.details.path, '../evil.sh');
    // A manifest valid but for one field: the error points at it (JSON pointer).
    const bad = { id: 'bad-one', name: 'Bad', version: '1.0.0', description: '', author: 'tests', license: 'MIT', steps: [ownStep('fine', { type: 'command', command: 'true' })] };
    bad.steps[0] = { ...ownStep('fine', { type: 'command', command: 'true' }), name: 'Not A Name' };
    const badManifest = await upload(Buffer.from(gzipSync(tarWith('manifest.json', Buffer.from(JSON.stringify(bad))))));
    assertError(badManifest, 400, 'validation_error', 'bundle');
    assert.equal(badManifest.json().error.details.path, '/steps/0/name');
    assert.match(badManifest.json().error.message, /^bundle: manifest\.json \/steps\/0\/name: must match pattern/);
    const oversized = await upload(Buffer.alloc(11 * 1024 * 1024, 1));
    assertError(oversized, 400, 'validation_error', 'bundle');
    assert.equal(oversized.json().error.message, 'bundle: larger than 10 MiB');
    assert.deepEqual(await rows(), before);
  });
});
