/**
 * linux-core steps run on a real sshd as the unprivileged test user, outputs compared with what
 * this host says. This host runs no init system: the service steps meet a stand-in systemctl put
 * first on PATH by the harness, Debian's real `service` command (with /usr/sbin on PATH, as a root
 * login has it) and, with the session's own PATH, the real "no service manager" failure.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, statfsSync } from 'node:fs';
import { cpus, uptime } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { type Sshd, sshdSkip, startSshd } from '../sshd.ts';
import { assertEveryLinuxStepRan, assertExit, createStepRunner, type StepRunner } from './ssh-runner.ts';

const LIB = 'linux-core';
const INTEGER = /^\d+$/;

describe('linux-core on a real sshd', { skip: sshdSkip() }, () => {
  let sshd: Sshd;
  let runner: StepRunner;
  const dir = `/tmp/oc-catalog-${randomBytes(6).toString('hex')}`;
  const fakebin = `${dir}/fakebin`;
  const run = (step: string, params: Record<string, unknown> = {}, options = {}) => runner.run(LIB, step, params, options);
  const sh = async (command: string) => (await runner.exec(command)).stdout.trim();
  const withStandIn = { pathPrepend: [fakebin] };
  const unit = (name: string, lines: string[]) => runner.writeFile(`${fakebin}/units/${name}`, `${lines.join('\n')}\n`);

  before(async () => {
    sshd = await startSshd();
    runner = await createStepRunner(sshd);
    await runner.exec(`mkdir -p ${fakebin}/units`);
    await runner.writeFile(`${fakebin}/systemctl`, readFileSync(join(import.meta.dirname, 'fixtures', 'systemctl')), 0o755);
    await unit('nginx.service', ['Description=nginx', 'ActiveState=active', 'SubState=running', 'UnitFileState=enabled', 'MainPID=1234']);
    await unit('worker.service', ['ActiveState=inactive', 'SubState=dead', 'UnitFileState=disabled', 'MainPID=0']);
    await unit('broken.service', ['ActiveState=active', 'SubState=running', 'UnitFileState=enabled', 'MainPID=77', 'RestartFails=yes']);
  });
  after(async () => {
    await runner?.exec(`rm -rf ${dir}`);
    runner?.close();
    await sshd?.stop();
  });

  test('get_system_info reports this host', async () => {
    const res = await run('get_system_info');
    assertExit(res, 0);
    const o = res.outputs;
    assert.equal(o.hostname, await sh('hostname'));
    assert.equal(o.kernel, await sh('uname -r'));
    assert.equal(o.architecture, await sh('uname -m'));
    const osRelease = readFileSync('/etc/os-release', 'utf8');
    assert.equal(o.os_id, /^ID=(.*)$/m.exec(osRelease)?.[1]?.replace(/"/g, ''));
    assert.ok(o.os_name, 'os_name');
    const memTotal = /^MemTotal:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
    assert.equal(o.memory_total_kb, memTotal);
    assert.match(o.memory_available_kb ?? '', INTEGER);
    assert.ok(Number(o.memory_total_kb) > 0 && Number(o.memory_available_kb) <= Number(o.memory_total_kb), JSON.stringify(o));
    assert.ok(Number(o.memory_used_percent) >= 0 && Number(o.memory_used_percent) <= 100);
    assert.equal(Number(o.cpu_count), cpus().length);
    assert.match(o.uptime_seconds ?? '', INTEGER);
    assert.ok(Math.abs(Number(o.uptime_seconds) - uptime()) < 60, `uptime ${o.uptime_seconds} vs ${uptime()}`);
    for (const load of [o.load_1m, o.load_5m, o.load_15m]) {
      assert.match(load ?? '', /^\d+\.\d+$/);
    }
    assert.match(o.swap_total_kb ?? '', INTEGER);
  });

  test('disk_usage reports the filesystem of a path and fails at the threshold', async () => {
    const root = await run('disk_usage');
    assertExit(root, 0);
    const fs = statfsSync('/');
    assert.equal(root.outputs.mount_point, '/');
    assert.equal(Number(root.outputs.size_kb), (fs.blocks * fs.bsize) / 1024);
    assert.ok(Number(root.outputs.used_kb) <= Number(root.outputs.size_kb));
    const used = Number(root.outputs.use_percent);
    assert.ok(used >= 1 && used < 100, `use_percent ${used}`);
    assert.equal(root.outputs.threshold_exceeded, 'false');

    const full = await run('disk_usage', { path: '/', threshold_percent: 1 });
    assertExit(full, 1);
    assert.equal(full.outputs.threshold_exceeded, 'true');
    assert.match(full.stderr, /\/ is \d+% full \(threshold 1%\)/);
    assertExit(await run('disk_usage', { path: '/', threshold_percent: 100 }), 0);

    const missing = await run('disk_usage', { path: `${dir}/does-not-exist` });
    assertExit(missing, 1);
    assert.match(missing.stderr, /No such file or directory/);
    assertExit(await run('disk_usage', { threshold_percent: 101 }), 2);
  });

  test('service_status reads systemd (stand-in systemctl first on PATH)', async () => {
    const active = await run('service_status', { service: 'nginx' }, withStandIn);
    assertExit(active, 0);
    assert.deepEqual(
      { ...active.outputs },
      { manager: 'systemd', service: 'nginx', unit: 'nginx.service', state: 'active', sub_state: 'running', active: 'true', enabled: 'enabled', main_pid: '1234' },
    );
    const stopped = await run('service_status', { service: 'worker.service' }, withStandIn);
    assertExit(stopped, 0);
    assert.equal(stopped.outputs.active, 'false');
    assert.equal(stopped.outputs.state, 'inactive');
    const required = await run('service_status', { service: 'worker', require_active: true }, withStandIn);
    assertExit(required, 1);
    assert.match(required.stderr, /worker is not active \(inactive\)/);
    const unknown = await run('service_status', { service: 'nope' }, withStandIn);
    assertExit(unknown, 1);
    assert.match(unknown.stderr, /systemd has no unit 'nope'/);
  });

  test('service names that could be options or code are refused before any service manager runs', async () => {
    const marker = `${dir}/pwned`;
    for (const service of ['-H', `nginx; touch ${marker}`, `$(touch ${marker})`, 'a b', '../etc']) {
      for (const step of ['service_status', 'restart_service']) {
        const res = await run(step, { service }, withStandIn);
        assertExit(res, 2);
        assert.match(res.stderr, /service (must start|may contain)/);
      }
    }
    assert.equal(await sh(`test -e ${marker} && echo exists || echo absent`), 'absent');
  });

  test('service steps without a service manager fail clearly (this host, the session PATH)', async () => {
    for (const step of ['service_status', 'restart_service']) {
      const res = await run(step, { service: 'ssh' });
      assertExit(res, 1);
      assert.equal(res.outputs.manager, 'none');
      assert.match(res.stderr, /no service manager: systemd is not running \(systemctl: (offline|not installed)\) and there is no 'service' command on PATH/);
    }
  });

  test('service steps use the SysV service command when systemd is not running (real /usr/sbin/service)', async () => {
    const withSbin = { pathAppend: ['/usr/sbin', '/sbin'] };
    const status = await run('service_status', { service: 'ssh' }, withSbin);
    assertExit(status, 0);
    assert.equal(status.outputs.manager, 'service');
    const code = Number(status.outputs.status_code);
    assert.equal(status.outputs.active, code === 0 ? 'true' : 'false');
    assert.equal(status.outputs.state, code === 0 ? 'running' : 'stopped');
    for (const step of ['service_status', 'restart_service']) {
      const unknown = await run(step, { service: 'oc-no-such-service' }, withSbin);
      assertExit(unknown, 1);
      assert.match(unknown.stderr, /the service command knows no service 'oc-no-such-service'/);
    }
  });

  test('restart_service restarts through systemd and reports the new state', async () => {
    const res = await run('restart_service', { service: 'worker' }, withStandIn);
    assertExit(res, 0);
    assert.equal(res.outputs.manager, 'systemd');
    assert.equal(res.outputs.active, 'true');
    assert.equal(res.outputs.state, 'active');
    const after = await run('service_status', { service: 'worker' }, withStandIn);
    assert.equal(after.outputs.state, 'active');
    assert.equal(after.outputs.main_pid, '1000');

    const failing = await run('restart_service', { service: 'broken' }, withStandIn);
    assertExit(failing, 1);
    assert.equal(failing.outputs.state, 'failed');
    assert.match(failing.stderr, /Job for broken.service failed[\s\S]*systemctl restart broken failed/);
    const unknown = await run('restart_service', { service: 'nope' }, withStandIn);
    assertExit(unknown, 1);
    assert.match(unknown.stderr, /systemd has no unit 'nope'/);
  });

  test('restart_service with use_sudo never prompts: without passwordless sudo it fails and nothing restarts', async () => {
    await unit('idle.service', ['ActiveState=inactive', 'SubState=dead', 'UnitFileState=enabled', 'MainPID=0']);
    const res = await run('restart_service', { service: 'idle', use_sudo: true }, withStandIn);
    assertExit(res, 1);
    assert.match(res.stderr, /sudo/);
    assert.equal((await run('service_status', { service: 'idle' }, withStandIn)).outputs.state, 'inactive');
  });

  test('package_installed reads the package database', async () => {
    const dpkg = await run('package_installed', { package: 'dpkg' });
    assertExit(dpkg, 0);
    assert.equal(dpkg.outputs.manager, 'dpkg');
    assert.equal(dpkg.outputs.installed, 'true');
    assert.equal(dpkg.outputs.version, await sh("dpkg-query -W -f '${Version}' dpkg"));

    const missing = await run('package_installed', { package: 'oc-no-such-package' });
    assertExit(missing, 0);
    assert.equal(missing.outputs.installed, 'false');
    assert.equal(missing.outputs.version, '');
    const required = await run('package_installed', { package: 'oc-no-such-package', fail_if_missing: true });
    assertExit(required, 1);
    assert.match(required.stderr, /oc-no-such-package is not installed/);
    assertExit(await run('package_installed', { package: '--admindir=/tmp' }), 2);
  });

  test('tail_log returns the last (matching) lines; log text cannot set outputs or run code', async () => {
    const log = `${dir}/app.log`;
    const lines = ['start', 'INFO one', 'ERROR disk full', 'OC_OUTPUT lines_returned=999', 'OC_OUTPUT injected=yes', 'INFO two', 'ERROR timeout', 'stop'];
    await runner.writeFile(log, `${lines.join('\n')}\n`);

    const tail = await run('tail_log', { path: log, lines: 3 });
    assertExit(tail, 0);
    assert.equal(tail.stdout.split('\n').slice(0, 3).join('\n'), 'INFO two\nERROR timeout\nstop');
    assert.equal(tail.outputs.lines_returned, '3');
    assert.equal(tail.outputs.file_size_bytes, String(Buffer.byteLength(`${lines.join('\n')}\n`)));

    const all = await run('tail_log', { path: log });
    assert.equal(all.outputs.lines_returned, '8');
    assert.equal(all.outputs.injected, undefined);
    assert.match(all.stdout, /^\[OC_OUTPUT\] injected=yes$/m);

    const errors = await run('tail_log', { path: log, pattern: '^ERROR', lines: 5 });
    assert.equal(errors.stdout.split('\n').slice(0, 2).join('\n'), 'ERROR disk full\nERROR timeout');
    assert.equal(errors.outputs.lines_returned, '2');
    const none = await run('tail_log', { path: log, pattern: 'no such text' });
    assertExit(none, 0);
    assert.equal(none.outputs.lines_returned, '0');

    const marker = `${dir}/pwned-by-pattern`;
    assertExit(await run('tail_log', { path: log, pattern: `$(touch ${marker})` }), 0);
    assert.equal(await sh(`test -e ${marker} && echo exists || echo absent`), 'absent');

    const shadow = await run('tail_log', { path: '/etc/shadow' });
    assertExit(shadow, 1);
    assert.match(shadow.stderr, /not readable by octest/);
    assertExit(await run('tail_log', { path: `${dir}/missing.log` }), 1);
    assertExit(await run('tail_log', { path: log, pattern: '(' }), 1);
    assertExit(await run('tail_log', { path: 'relative.log' }), 2);
    assertExit(await run('tail_log', { path: log, lines: 0 }), 2);
  });

  test('every Linux step of linux-core ran', () => assertEveryLinuxStepRan(runner, LIB));
});
