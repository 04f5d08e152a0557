/**
 * End-to-end tests of the real `opsconductor` CLI: each test starts `node --import tsx
 * src/main/cli.ts …` as a child process and talks to it over TCP with `fetch`.
 */
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { databaseUrl, TEST_PG_URL } from '../../test/db.ts';
import { SERVICE_NAMES, SERVICE_PORT_OFFSETS } from '../services.ts';
import { VERSION } from '../version.ts';

const ROOT = join(import.meta.dirname, '..', '..');

// ---- helpers: spawn, wait, collect output ------------------------------------------------------

/** A running CLI child with everything it printed so far. */
interface Cli {
  child: ChildProcessWithoutNullStreams;
  out: { stdout: string; stderr: string };
  /** Resolves with the exit code (null when a signal ended it) once its output is complete. */
  exited: Promise<number | null>;
}

/** Starts the CLI with a clean environment: no inherited OPSCONDUCTOR_* variable, plus `env`. */
function spawnCli(args: string[], env: Record<string, string> = {}): Cli {
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith('OPSCONDUCTOR_') && k !== 'NODE_TEST_CONTEXT');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], { cwd: ROOT, env: { ...Object.fromEntries(inherited), ...env } });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, out, exited };
}

function running(cli: Cli): boolean {
  return cli.child.exitCode === null && cli.child.signalCode === null;
}

/** Kills the child if it still runs and waits for it (cleanup hooks). */
async function killCli(cli: Cli | undefined): Promise<void> {
  if (cli && running(cli)) {
    cli.child.kill('SIGKILL');
  }
  await cli?.exited;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a one-shot command to completion (killed after `timeoutMs`). */
async function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = spawnCli(args, env);
  try {
    const code = await withTimeout(cli.exited, timeoutMs, `opsconductor ${args.join(' ')}`);
    return { code, ...cli.out };
  } finally {
    await killCli(cli);
  }
}

/** An HTTP call to 127.0.0.1:`port`; the body is parsed JSON. */
async function call<T = unknown>(port: number, path: string, init: { method?: string; token?: string; json?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (init.token) {
    headers.authorization = `Bearer ${init.token}`;
  }
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T };
}

interface HealthBody {
  service: string;
  status: string;
  version: string;
  checks: Array<{ name: string; status: string; message: string }>;
}
interface ErrorBody {
  error: { code: string; message: string };
  request_id: string;
}
interface TokenBody {
  access_token: string;
  refresh_token: string;
}

/** Polls GET /health on `port` until it answers 200; fails early when the child exits. */
async function waitForHealth(cli: Cli, port: number, timeoutMs = 90_000): Promise<HealthBody> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running(cli)) {
      throw new Error(`the CLI exited (${cli.child.exitCode ?? cli.child.signalCode}) before port ${port} was healthy:\n${cli.out.stderr}${cli.out.stdout}`);
    }
    try {
      const res = await call<HealthBody>(port, '/health');
      if (res.status === 200) {
        return res.body;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`port ${port} not healthy within ${timeoutMs} ms:\n${cli.out.stderr}${cli.out.stdout}`);
}

/** The JSON log lines the child printed (the console banner is not a log line). */
function logLines(cli: Cli): string[] {
  return `${cli.out.stdout}\n${cli.out.stderr}`.split('\n').filter((l) => l.startsWith('{'));
}

/** Waits until the child printed `text` (its logs arrive asynchronously through the pipe). */
async function waitForOutput(cli: Cli, text: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!`${cli.out.stdout}${cli.out.stderr}`.includes(text)) {
    if (Date.now() > deadline) {
      throw new Error(`the CLI did not print ${text} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

const reservedPorts = new Set<number>();

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port P with P..P+11 free (below Linux's ephemeral range, so outgoing sockets don't take them). */
async function freeBasePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const ports = Array.from({ length: 12 }, (_, i) => base + i);
    if (ports.some((p) => reservedPorts.has(p))) {
      continue;
    }
    if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) {
      ports.forEach((p) => reservedPorts.add(p));
      return base;
    }
  }
  throw new Error('no free range of 12 ports found');
}

const tempDirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oc-cli-'));
  tempDirs.push(dir);
  return dir;
}

const isRefused = (e: unknown) => ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';

// ---- tests ---------------------------------------------------------------------------------------

// Two at a time: the start/stop/reset chain runs beside the shorter tests without starving them all of CPU.
describe('opsconductor CLI (real processes)', { concurrency: 2 }, () => {
  after(() => {
    for (const dir of tempDirs) {
      rmSync(dir, { recursive: true, force: true });
    }
  });

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

      const anonymous = await call<ErrorBody>(port + 2, '/users');
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

      const login = await call<TokenBody>(port + 1, '/auth/login', { method: 'POST', json: { username: 'admin', password: initialPassword } });
      assert.equal(login.status, 200);
      firstTokens = login.body;
      const users = await call<{ users: Array<{ username: string; role: string }> }>(port + 2, '/users', { token: firstTokens.access_token });
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
      await assert.rejects(call(otherPort, '/health'), isRefused);
      assert.equal((await call(port, '/health')).status, 200);
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
        assert.equal((await call<HealthBody>(base, '/health')).body.service, 'gateway');
        for (const service of SERVICE_NAMES) {
          await assert.rejects(call(base + SERVICE_PORT_OFFSETS[service], '/health'), isRefused, `${service} port`);
        }
      });

      test('the reset password logs in; the old password and the old sessions do not', async () => {
        const login = await call<TokenBody>(base, '/auth/login', { method: 'POST', json: { username: 'admin', password: newPassword } });
        assert.equal(login.status, 200);
        assert.equal((await call(base, '/users', { token: login.body.access_token })).status, 200);
        const old = await call<ErrorBody>(base, '/auth/login', { method: 'POST', json: { username: 'admin', password: initialPassword } });
        assert.equal(old.status, 401);
        assert.equal((await call(base, '/users', { token: firstTokens.access_token })).status, 401);
        assert.equal((await call(base, '/auth/refresh', { method: 'POST', json: { refresh_token: firstTokens.refresh_token } })).status, 401);
        // No new initial password was generated: the admin already existed.
        assert.doesNotMatch(gatewayOnly?.out.stdout ?? '', /created the first user/);
      });
    });
  });

  describe('migrate on a fresh data directory', { concurrency: false }, () => {
    let dataDir: string;
    before(() => {
      dataDir = tempDir();
    });

    test('migrate exits 0, creates the database and releases the lock', async () => {
      const res = await runCli(['migrate'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /database schema is up to date/);
      const files = readdirSync(dataDir);
      assert.ok(files.includes('pgdata'), files.join());
      assert.ok(!files.includes('opsconductor.lock'), 'lock released');
      assert.ok(!files.includes('initial-admin-password'), 'migrate creates no user');
    });

    test('admin reset-password before the first start creates admin with that password; other users stay unknown', async () => {
      const unknown = await runCli(['admin', 'reset-password', 'nobody'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      assert.equal(unknown.code, 2, unknown.stderr);
      assert.match(unknown.stderr, /^opsconductor: User nobody not found\n$/);
      const res = await runCli(['admin', 'reset-password', 'admin'], { OPSCONDUCTOR_DATA_DIR: dataDir });
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /New password of admin: \S{12,}/);
    });
  });

  test('--help works for the program and every command', async () => {
    const commands = ['start', 'serve', 'worker', 'scheduler', 'migrate', 'admin reset-password'];
    const program = await runCli(['--help']);
    assert.equal(program.code, 0, program.stderr);
    assert.match(program.stdout, /Usage: opsconductor /);
    for (const name of ['start', 'serve', 'worker', 'scheduler', 'migrate', 'admin']) {
      assert.match(program.stdout, new RegExp(`^\\s+${name}\\b`, 'm'), `program help lists ${name}`);
    }
    for (const command of commands) {
      const res = await runCli([...command.split(' '), '--help']);
      assert.equal(res.code, 0, `${command}: ${res.stderr}`);
      assert.ok(res.stdout.includes(`Usage: opsconductor ${command} `), `${command} --help:\n${res.stdout}`);
    }
  });

  test('a bad configuration exits 2 naming every problem at once, before touching the disk', async () => {
    const dataDir = join(tempDir(), 'never-created');
    const res = await runCli(['start'], { OPSCONDUCTOR_PORT: 'abc', OPSCONDUCTOR_ADMIN_PASSWORD: 'short', OPSCONDUCTOR_DATA_DIR: dataDir });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /OPSCONDUCTOR_PORT/);
    assert.match(res.stderr, /OPSCONDUCTOR_ADMIN_PASSWORD/);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(dataDir), false);
  });

  if (TEST_PG_URL) {
    describe('serve --services users on PostgreSQL', { concurrency: false }, () => {
      const dbName = `t_cli_${randomBytes(6).toString('hex')}`;
      let admin: pg.Client | undefined;
      let serve: Cli | undefined;
      let port: number;
      let dataDir: string;
      before(async () => {
        admin = new pg.Client({ connectionString: TEST_PG_URL });
        await admin.connect();
        await admin.query(`create database ${dbName}`);
        port = await freeBasePort();
        dataDir = tempDir();
        serve = spawnCli(['serve', '--services', 'users', '--port', String(port), '--database-url', databaseUrl(dbName)], {
          OPSCONDUCTOR_ADMIN_PASSWORD: 'cli-test-admin-password-1',
          // With a database URL there is no generated DATA_DIR/master.key: the key must be given.
          OPSCONDUCTOR_MASTER_KEY: randomBytes(32).toString('base64'),
          OPSCONDUCTOR_DATA_DIR: dataDir,
        });
        await waitForHealth(serve, port);
      });
      after(async () => {
        await killCli(serve);
        await admin?.query(`drop database if exists ${dbName} with (force)`);
        await admin?.end();
      });

      test('serves only the users routes, on PostgreSQL, without an embedded database', async () => {
        const health = await call<HealthBody>(port, '/health');
        assert.equal(health.body.checks[0]?.message, 'postgres reachable');
        const users = await call<ErrorBody>(port, '/users');
        assert.equal(users.status, 401);
        assert.equal(users.body.error.code, 'auth_error');
        const login = await call(port, '/auth/login', { method: 'POST', json: { username: 'admin', password: 'cli-test-admin-password-1' } });
        assert.equal(login.status, 404);
        // serve has no service ports.
        await assert.rejects(call(port + SERVICE_PORT_OFFSETS.users, '/health'), isRefused);
        // No embedded database was opened.
        assert.ok(!existsSync(join(dataDir, 'pgdata')) && !existsSync(join(dataDir, 'opsconductor.lock')), readdirSync(dataDir).join());
      });
    });
  }
});
