/**
 * End-to-end test of the real `opsconductor` CLI on the embedded database, in order: `start`, its
 * scheduler firing a schedule made over the API, a refused second `start`, a graceful stop,
 * `admin reset-password`, then `start --no-service-ports`.
 */
import { startHttpSink } from '../../test/http-sink.ts';
import { callPort, waitFor } from '../../test/procs.ts';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { SERVICE_NAMES, SERVICE_PORT_OFFSETS } from '../services.ts';
import { VERSION } from '../version.ts';
import { type Cli, type ErrorBody, freeBasePort, type HealthBody, isRefused, killCli, logLines, removeTempDirs, runCli, running, spawnCli, tempDir, type TokenBody, waitForHealth, waitForOutput, withTimeout } from './cli.fixtures.ts';

describe('opsconductor CLI (real processes)', { concurrency: 2 }, () => {
  after(removeTempDirs);

  describe('start on the embedded database, second start, graceful stop, password reset', { concurrency: false }, () => {
    let dataDir: string;
    let port: number;
    let first: Cli | undefined;
    let second: Cli | undefined;
    let initialPassword: string;
    let firstTokens: TokenBody;
    let newPassword: string;
    before(async () => {
      dataDir = tempDir();
      port = await freeBasePort();
    });
    after(async () => {
      await killCli(first);
      await killCli(second);
    });

    test('start serves the gateway and every service port, creates the admin, never logs tokens', async () => {
      first = spawnCli(['start', '--port', String(port), '--log-level', 'debug'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      const ports: Array<[number, string]> = [[port, 'gateway'], ...SERVICE_NAMES.map((s): [number, string] => [port + SERVICE_PORT_OFFSETS[s], s])];
      assert.deepEqual(
        ports.map(([p]) => p - port),
        [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11],
      );
      for (const [p, service] of ports) {
        const health = await waitForHealth(first, p);
        assert.deepEqual(Object.keys(health).sort(), ['checks', 'service', 'status', 'version']);
        assert.equal(health.service, service, `service on port ${p}`);
        assert.equal(health.status, 'healthy');
        assert.equal(health.version, VERSION);
        assert.equal(health.checks[0]?.name, 'database');
        assert.equal(health.checks[0]?.status, 'healthy');
      }

      const anonymous = await callPort<ErrorBody>(port + 2, '/users');
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'auth_error');
      assert.equal(typeof anonymous.body.request_id, 'string');
      assert.ok(anonymous.body.request_id.length > 0);

      const file = join(dataDir, 'initial-admin-password');
      assert.equal(statSync(file).mode & 0o777, 0o600);
      initialPassword = readFileSync(file, 'utf8').trim();
      assert.ok(initialPassword.length >= 12, 'generated password is long enough');
      assert.ok(first.out.stdout.includes(`password: ${initialPassword}`), 'the generated password is shown on the console');
      assert.ok(!logLines(first).some((l) => l.includes(initialPassword)), 'the generated password is never logged');

      const login = await callPort<TokenBody>(port + 1, '/auth/login', { method: 'POST', json: { username: 'admin', password: initialPassword } });
      assert.equal(login.status, 200);
      firstTokens = login.body;
      const users = await callPort<{ users: Array<{ username: string; role: string }> }>(port + 2, '/users', { token: firstTokens.access_token });
      assert.equal(users.status, 200);
      assert.deepEqual(
        users.body.users.map((u) => [u.username, u.role]),
        [['admin', 'admin']],
      );

      // The /users request's completion is the last thing logged for these calls.
      await waitForOutput(first, users.headers.get('x-request-id') ?? 'x-request-id missing');
      const output = `${first.out.stdout}${first.out.stderr}`;
      assert.ok(!output.includes(firstTokens.access_token), 'access token in the output');
      assert.ok(!output.includes(firstTokens.refresh_token), 'refresh token in the output');
    });

    test('start runs the scheduler loop: a 1-second schedule created over the API fires and its run calls out', { timeout: 90_000 }, async () => {
      assert.ok(first && running(first));
      const token = firstTokens.access_token;
      const sink = await startHttpSink();
      try {
        const job = await callPort<{ id: number }>(port, '/jobs', { method: 'POST', token, json: { name: 'every-second', steps: [{ type: 'webhook', name: 'w', url: `${sink.url}/from-schedule` }] } });
        assert.equal(job.status, 200, JSON.stringify(job.body));
        const made = await callPort<{ id: number }>(port, '/schedules', { method: 'POST', token, json: { job_id: job.body.id, cron: '* * * * * *' } });
        assert.equal(made.status, 200, JSON.stringify(made.body));
        // Generous deadlines: the process shares 2 CPUs with other tests; a fire is due every second.
        const queued = await waitFor(
          'a queued fire',
          async () => {
            const { fires } = (await callPort<{ fires: Array<{ run_id: number | null }> }>(port, `/schedules/${made.body.id}/fires?outcome=queued`, { token })).body;
            return fires.length > 0 && fires;
          },
          30_000,
          200,
        );
        assert.equal(typeof queued.at(-1)?.run_id, 'number');
        await sink.waitFor('/from-schedule', 1, 30_000);
        const off = await callPort(port, `/schedules/${made.body.id}`, { method: 'PUT', token, json: { enabled: false } });
        assert.equal(off.status, 200);
      } finally {
        await sink.close();
      }
    });

    test('a second start on the same data directory refuses: the directory is in use', async () => {
      const otherPort = await freeBasePort();
      second = spawnCli(['start', '--port', String(otherPort)], { OPSCONDUCTOR_DATA_DIR: dataDir });
      const code = await withTimeout(second.exited, 60_000, 'second start');
      assert.notEqual(code, 0);
      assert.equal(code, 2, 'an operator error, not a crash');
      assert.match(second.out.stderr, /data directory .* is in use/);
      assert.doesNotMatch(second.out.stderr, /\n\s+at /, 'no stack trace');
      // The refused process neither stole nor removed the first one's lock, nor bound a port.
      assert.equal(readFileSync(join(dataDir, 'opsconductor.lock'), 'utf8'), String(first?.child.pid));
      await assert.rejects(callPort(otherPort, '/health'), isRefused);
      assert.equal((await callPort(port, '/health')).status, 200);
    });

    test('SIGTERM stops start gracefully (exit 0) and releases the lock', async () => {
      assert.ok(first && running(first));
      first.child.kill('SIGTERM');
      const code = await withTimeout(first.exited, 15_000, 'graceful stop');
      assert.equal(code, 0, first.out.stderr);
      assert.equal(existsSync(join(dataDir, 'opsconductor.lock')), false);
      assert.equal(existsSync(join(dataDir, 'initial-admin-password')), true);
      const output = `${first.out.stdout}${first.out.stderr}`;
      assert.ok(!output.includes(firstTokens.access_token) && !output.includes(firstTokens.refresh_token), 'tokens in the final output');
    });

    test('admin reset-password prints a new password (never logged)', async () => {
      const res = await runCli(['admin', 'reset-password', 'admin'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      assert.equal(res.code, 0, res.stderr);
      const match = /New password of admin: (\S+)/.exec(res.stdout);
      assert.ok(match?.[1], res.stdout);
      newPassword = match[1];
      assert.notEqual(newPassword, initialPassword);
      assert.ok(newPassword.length >= 12);
      const logged = `${res.stdout}\n${res.stderr}`.split('\n').filter((l) => l.startsWith('{'));
      assert.ok(!logged.some((l) => l.includes(newPassword)), 'the new password is never logged');
      assert.equal(existsSync(join(dataDir, 'opsconductor.lock')), false);
    });

    describe('start --no-service-ports on the reset data directory', { concurrency: false }, () => {
      let gatewayOnly: Cli | undefined;
      let base: number;
      before(async () => {
        base = await freeBasePort();
        gatewayOnly = spawnCli(['start', '--port', String(base), '--no-service-ports'], { OPSCONDUCTOR_DATA_DIR: dataDir });
        await waitForHealth(gatewayOnly, base);
      });
      after(() => killCli(gatewayOnly));

      test('only the gateway port answers', async () => {
        assert.equal((await callPort<HealthBody>(base, '/health')).body.service, 'gateway');
        for (const service of SERVICE_NAMES) {
          await assert.rejects(callPort(base + SERVICE_PORT_OFFSETS[service], '/health'), isRefused, `${service} port`);
        }
      });

      test('the reset password logs in; the old password and the old sessions do not', async () => {
        const login = await callPort<TokenBody>(base, '/auth/login', { method: 'POST', json: { username: 'admin', password: newPassword } });
        assert.equal(login.status, 200);
        assert.equal((await callPort(base, '/users', { token: login.body.access_token })).status, 200);
        const old = await callPort<ErrorBody>(base, '/auth/login', { method: 'POST', json: { username: 'admin', password: initialPassword } });
        assert.equal(old.status, 401);
        assert.equal((await callPort(base, '/users', { token: firstTokens.access_token })).status, 401);
        assert.equal((await callPort(base, '/auth/refresh', { method: 'POST', json: { refresh_token: firstTokens.refresh_token } })).status, 401);
        // No new initial password was generated: the admin already existed.
        assert.doesNotMatch(gatewayOnly?.out.stdout ?? '', /created the first user/);
      });
    });
  });
});
