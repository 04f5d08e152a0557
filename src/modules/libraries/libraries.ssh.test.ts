/**
 * Executing library steps on a real sshd: a step only runs on a target of a platform it declares
 * (400 naming target_id otherwise; the same check for a run's targets), operators may execute,
 * the whole call is bounded by timeout_s, and a script step's temporary file is gone afterwards.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { assertError } from '../../../test/assertions.ts';
import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';
import { checkRunPlatforms } from './index.ts';
import { ownLibrary, ownStep, uploadBundle } from './libraries.fixtures.ts';

describe('library steps on targets', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshd: Sshd;
  let credential: number;
  const targets = { linux: 0, windows: 0, network: 0 };
  const lib = unique('own-');
  const call = (method: 'GET' | 'POST' | 'DELETE', url: string, payload?: Record<string, unknown>, token = ctx.adminToken) => ctx.request({ method, url, token, payload });
  const created = async (url: string, payload: Record<string, unknown>) => {
    const res = await call('POST', url, payload);
    assert.equal(res.statusCode, 200, res.body);
    return res.json().id as number;
  };
  const execute = (step: string, parameters: Record<string, unknown>, extra: Record<string, unknown> = {}, token?: string) =>
    call('POST', `/libraries/${lib}/steps/${step}/execute`, { parameters, ...extra }, token);

  before(async () => {
    ctx = await createTestContext();
    sshd = await startSshd();
    credential = await created('/credentials', { name: unique('c'), type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey });
    // The winrm target has no credential: the platform check refuses before one is needed.
    const target = (os_type: string, protocol: string) => created('/targets', { name: unique(os_type), host: sshd.host, port: sshd.port, os_type, protocol, ...(protocol === 'ssh' ? { credential_id: credential } : {}) });
    targets.linux = await target('linux', 'ssh');
    targets.windows = await target('windows', 'winrm');
    targets.network = await target('network', 'ssh');
    const steps = [
      ownStep('hello', { type: 'command', command: 'echo "OC_OUTPUT said=hello {{ params.who }}"' }, ['linux'], { who: { type: 'string', description: 'who', default: 'world' } }),
      ownStep('win_only', { type: 'command', shell: 'powershell', command: 'Write-Output hi' }, ['windows']),
      ownStep('probe', { type: 'script', shell: 'sh', file: 'scripts/probe.sh' }, ['linux']),
      ownStep('stuck', { type: 'script', shell: 'sh', file: 'scripts/stuck.sh' }, ['linux']),
      ownStep('slow', [{ type: 'command', command: 'sleep 1; echo first-done' }, { type: 'command', command: 'sleep 60; echo never' }], ['linux']),
      ownStep('fetch', { type: 'http', method: 'GET', url: '{{ params.url }}' }, ['any'], { url: { type: 'string', description: 'url', required: true } }),
    ];
    const up = await uploadBundle(ctx, await ownLibrary(lib, '1.0.0', steps, { 'scripts/probe.sh': '#!/bin/sh\necho "OC_OUTPUT path=$0"\ntest -f "$0"\n', 'scripts/stuck.sh': '#!/bin/sh\necho "path=$0"\nsleep 60\n' }));
    assert.equal(up.statusCode, 200, up.body);
    assert.equal((await call('POST', '/libraries/windows-core/install', {})).statusCode, 200);
  });
  after(async () => {
    await ctx?.close();
    await sshd?.stop();
  });

  test('a step declared for another platform is refused before anything runs (400 naming target_id)', async () => {
    const win = await call('POST', '/libraries/windows-core/steps/run_powershell/execute', { parameters: { target_id: targets.linux, script: 'Write-Output hi' } });
    assertError(win, 400, 'validation_error', 'target_id');
    assert.match(win.json().error.message, /^target_id: step "run_powershell" \(windows-core\/run_powershell\) cannot run there: target linux\w+ \(\d+, os_type linux, protocol ssh\) is a linux target; the step runs on windows$/);
    assertError(await execute('hello', { target_id: targets.windows }), 400, 'validation_error', 'target_id');
    const network = await execute('hello', { target_id: targets.network });
    assertError(network, 400, 'validation_error', 'target_id');
    assert.match(network.json().error.message, /is neither a linux nor a windows target; the step runs on linux$/);
    assertError(await execute('win_only', { target_id: targets.linux }), 400, 'validation_error', 'target_id');
  });

  test('a step declared for any platform runs on a network device', async () => {
    const web = createServer((_req, res) => res.end('from-loopback\n'));
    await new Promise<void>((r) => web.listen(0, '127.0.0.1', r));
    try {
      const res = await execute('fetch', { target_id: targets.network, url: `http://127.0.0.1:${(web.address() as AddressInfo).port}/` });
      assert.equal(res.statusCode, 200, res.body);
      assert.deepEqual([res.json().result.status, res.json().result.stdout], ['succeeded', 'from-loopback\n']);
    } finally {
      await new Promise((r) => web.close(r));
    }
  });

  test('operators may execute a step', async () => {
    const operator = (await ctx.createUser('operator')).token;
    const res = await execute('hello', { target_id: targets.linux, who: 'operator' }, {}, operator);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual([res.json().result.status, res.json().result.outputs.said], ['succeeded', 'hello operator']);
  });

  test('a run’s targets are checked against the platforms frozen into its expanded steps', async () => {
    const job = [{ type: 'library', name: 'ps', library: 'windows-core', step: 'run_powershell', parameters: { script: 'Write-Output hi' }, timeout_s: 60, continue_on_error: false, retries: 0 }];
    const expanded = await ctx.deps.libraries.expandSteps(job);
    assert.deepEqual((expanded[0]?.library as { platforms: string[] }).platforms, ['windows']);
    const [linux, windows] = await ctx.deps.targets.getMany([targets.linux, targets.windows], 'target_ids');
    assert.doesNotThrow(() => checkRunPlatforms(expanded, [windows as never]));
    assert.throws(() => checkRunPlatforms(expanded, [windows as never, linux as never]), (e: Error & { field?: string }) => {
      assert.match(e.message, /^target_ids: step "ps" \(windows-core\/run_powershell\) cannot run there: target linux/);
      return true;
    });
  });

  test('timeout_s bounds the whole call, not each implementation item', async () => {
    const res = await execute('slow', { target_id: targets.linux }, { timeout_s: 3 });
    assert.equal(res.statusCode, 200, res.body);
    const { result, execution_time_ms: ms } = res.json();
    assert.equal(result.status, 'timed_out', JSON.stringify(result));
    assert.equal(result.stdout, 'first-done\n');
    assert.ok(ms >= 2500 && ms < 20_000, `took ${ms} ms`);
    assertError(await execute('slow', { target_id: targets.linux }, { timeout_s: 0 }), 400, 'validation_error');
  });

  test('a script step’s temporary file is removed from the target after the run', async () => {
    const res = await execute('probe', { target_id: targets.linux });
    assert.equal(res.statusCode, 200, res.body);
    const { result } = res.json();
    assert.equal(result.status, 'succeeded', JSON.stringify(result));
    assert.match(result.outputs.path, /^\/tmp\/oc-lib-[0-9a-f]{12}-probe\.sh$/);
    // The sshd is on this machine: its /tmp is ours.
    assert.equal(existsSync(result.outputs.path), false, `${result.outputs.path} is left on the target`);
  });

  test('a script step stopped by its timeout is removed from the target too (its own rm never ran)', async () => {
    const res = await execute('stuck', { target_id: targets.linux }, { timeout_s: 2 });
    assert.equal(res.statusCode, 200, res.body);
    const { result } = res.json();
    assert.equal(result.status, 'timed_out', JSON.stringify(result));
    const path = /path=(\S+)/.exec(result.stdout)?.[1];
    assert.match(String(path), /^\/tmp\/oc-lib-[0-9a-f]{12}-stuck\.sh$/);
    assert.equal(existsSync(String(path)), false, `${path} is left on the target`);
  });
});
