/**
 * The test harness: a real app on a fresh database (see db.ts), logs captured in memory, an admin
 * with a known password, and small helpers for authenticated requests.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import type { InjectOptions, LightMyRequestResponse } from 'fastify';

import { buildApp } from '../src/app.ts';
import { type Config, loadConfig } from '../src/config.ts';
import { createDeps, type Deps } from '../src/deps.ts';
import type { AccessEntry } from '../src/http/auth.plugin.ts';
import type { App } from '../src/http/types.ts';
import { createLogger } from '../src/logging.ts';
import { SERVICE_NAMES } from '../src/services.ts';
import { startWorker } from '../src/worker/worker.ts';
import type { Clock } from '../src/shared/clock.ts';
import type { Role } from '../src/shared/roles.ts';
import { createTestDatabase } from './db.ts';
import { createLogCapture, type LogCapture } from './log-capture.ts';

/** Password of the `admin` user in every test app. */
export const ADMIN_PASSWORD = 'admin-password-for-tests-1';

/** A running test app. */
export interface TestContext {
  app: App;
  /** Every route the app registered, with its access level. */
  routes: AccessEntry[];
  deps: Deps;
  config: Config;
  logs: LogCapture;
  dataDir: string;
  /** Access token of `admin`. */
  adminToken: string;
  /** `app.inject` with an optional bearer token. */
  request(options: InjectOptions & { token?: string }): Promise<LightMyRequestResponse>;
  /** Logs in and returns the token response body. */
  login(username: string, password: string): Promise<{ access_token: string; refresh_token: string }>;
  /** Creates a user with `role` through the API and logs them in. */
  createUser(role: Role, overrides?: { username?: string; password?: string }): Promise<{ id: number; username: string; password: string; token: string }>;
  close(): Promise<void>;
}

/** A short unique suffix for names. */
export function unique(prefix = 'u'): string {
  return `${prefix}${randomBytes(4).toString('hex')}`;
}

/** Starts a test app; `env` adds OPSCONDUCTOR_* settings, `clock` replaces the wall clock, `worker` runs the queue and an in-process worker, `queue` the queue alone. */
export async function createTestContext(options: { env?: Record<string, string>; clock?: Clock; worker?: boolean; queue?: boolean } = {}): Promise<TestContext> {
  const testDb = await createTestDatabase();
  const dataDir = mkdtempSync(join(tmpdir(), 'oc-test-'));
  const config = loadConfig({ OPSCONDUCTOR_DATA_DIR: dataDir, OPSCONDUCTOR_ADMIN_PASSWORD: ADMIN_PASSWORD, OPSCONDUCTOR_LOG_LEVEL: 'debug', ...options.env });
  const logs = createLogCapture();
  const deps = await createDeps(config, {
    logger: createLogger(config.logLevel, logs.stream),
    clock: options.clock,
    database: testDb.database,
    migrate: false,
    queue: options.worker === true || options.queue === true,
  });
  const worker = options.worker ? await startWorker(deps, { concurrency: deps.config.worker.concurrency, dispatch: true }) : undefined;
  await deps.users.ensureInitialAdmin(ADMIN_PASSWORD);
  const routes: AccessEntry[] = [];
  const app = await buildApp(deps, { name: 'gateway', services: SERVICE_NAMES, accessTable: routes });
  await app.ready();

  const request: TestContext['request'] = ({ token, headers, ...rest }) =>
    app.inject({ ...rest, headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) } });

  const login: TestContext['login'] = async (username, password) => {
    const res = await request({ method: 'POST', url: '/auth/login', payload: { username, password } });
    if (res.statusCode !== 200) {
      throw new Error(`login of ${username} failed: ${res.statusCode} ${res.body}`);
    }
    return res.json();
  };

  const adminToken = (await login('admin', ADMIN_PASSWORD)).access_token;

  const createUser: TestContext['createUser'] = async (role, overrides = {}) => {
    const username = overrides.username ?? unique(role);
    const password = overrides.password ?? `pw-${unique()}-${unique()}`;
    const res = await request({ method: 'POST', url: '/users', token: adminToken, payload: { username, email: `${username}@example.test`, password, role } });
    if (res.statusCode !== 200) {
      throw new Error(`creating ${username} failed: ${res.statusCode} ${res.body}`);
    }
    return { id: res.json().id, username, password, token: (await login(username, password)).access_token };
  };

  return {
    app,
    routes,
    deps,
    config,
    logs,
    dataDir,
    adminToken,
    request,
    login,
    createUser,
    close: async () => {
      await app.close();
      await worker?.stop();
      await deps.release();
      await testDb.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
