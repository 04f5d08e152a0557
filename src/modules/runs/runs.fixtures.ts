/**
 * Shared setup of the job-run tests (runs.*.test.ts): a client for the run API, the local HTTP
 * receiver that http and webhook steps call, and environments with or without real sshd servers.
 * Each describe block calls `runsEnv` or `sshRunsEnv`, which register that block's own
 * `before`/`after` hooks; tests read the state (`ctx`, `sshd`, …) those hooks fill.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { listenHttp } from '../../../test/http-sink.ts';
import { waitFor } from '../../../test/procs.ts';
import { SSH_TEST_PASSWORD, SSH_TEST_USER, type Sshd, startSshd, testUserProcesses } from '../../../test/sshd.ts';

/** Run statuses that are final. */
export const FINAL = ['completed', 'failed', 'canceled', 'timed_out'];
/** A UTC timestamp as the API writes it. */
export const ISO_UTC = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
/** OPSCONDUCTOR_MAX_OUTPUT_BYTES of the SSH environments. */
export const MAX_OUTPUT = 2048;

/** A JSON object. */
export type Json = Record<string, unknown>;
/** One step of one target in GET /job-runs/{id}. */
export type StepView = {
  step_index: number;
  name: string;
  target_id: number | null;
  status: string;
  exit_code: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  truncated: boolean;
  error: string | null;
  started_at: string | null;
  finished_at: string | null;
  duration_ms: number | null;
};
/** One target in GET /job-runs/{id}. */
export type TargetView = { target_id: number | null; name: string | null; status: string; error: string | null };
/** GET /job-runs/{id}. */
export interface RunView extends Json {
  id: number;
  status: string;
  trigger: string;
  summary: Record<string, number>;
  target_ids: number[];
  targets: TargetView[];
  steps: StepView[];
}
/** A request the local receiver saw. */
export type Received = { method: string; url: string; headers: IncomingHttpHeaders; body: Buffer };

/** Polls `check` every 50 ms; fails naming `what` after `timeoutMs`. */
export const waitUntil = (what: string, check: () => boolean, timeoutMs = 10_000) => waitFor(what, check, timeoutMs, 50);

/** The step `index` of `targetId` in `run`, asserting it exists. */
export function stepOf(run: RunView, targetId: number, index: number): StepView {
  const step = run.steps.find((s) => s.target_id === targetId && s.step_index === index);
  assert.ok(step, `run ${run.id} has step ${index} for target ${targetId}`);
  return step;
}

/** The status of `targetId` in `run`. */
export const targetStatus = (run: RunView, targetId: number) => run.targets.find((t) => t.target_id === targetId)?.status;

/** Admin requests against the run API of the app `ctx` returns (read lazily, so it can be set in `before`). */
export function runsClient(ctx: () => TestContext) {
  const api = (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) =>
    ctx().request({ method, url, token: ctx().adminToken, ...(payload === undefined ? {} : { payload: payload as Json }) });
  const runJob = (jobId: number, payload: Json = {}, token = ctx().adminToken) => ctx().request({ method: 'POST', url: `/jobs/${jobId}/run`, token, payload });
  const getRun = async (id: number): Promise<RunView> => {
    const res = await api('GET', `/job-runs/${id}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  return {
    api,
    runJob,
    getRun,
    createCredential: async (payload: Json) => {
      const res = await api('POST', '/credentials', { name: unique('cred'), ...payload });
      assert.equal(res.statusCode, 200, res.body);
      return res.json().id as number;
    },
    createJob: async (payload: Json) => {
      const res = await api('POST', '/jobs', { name: unique('job'), ...payload });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { id: number; name: string };
    },
    startRun: async (jobId: number, payload: Json = {}) => {
      const res = await runJob(jobId, payload);
      assert.equal(res.statusCode, 200, res.body);
      return res.json().job_run_id as number;
    },
    /** Polls every 100 ms until `done` holds (default: the run is final). */
    waitForRun: async (id: number, done: (run: RunView) => boolean = (r) => FINAL.includes(r.status), timeoutMs = 20_000): Promise<RunView> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const run = await getRun(id);
        if (done(run)) {
          return run;
        }
        if (Date.now() > deadline) {
          assert.fail(`run ${id} did not reach the expected state in ${timeoutMs} ms: ${JSON.stringify(run)}`);
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}

/**
 * A local HTTP server standing in for the APIs http and webhook steps call:
 * `/text` answers a body with an OC_OUTPUT line, `/echo` answers the request body,
 * `/status/<code>` answers that status with the Authorization header it got,
 * `/hold/<key>` answers only once `release(key)` was called (`/hold/never` never does).
 */
export async function startReceiver() {
  const requests: Received[] = [];
  const released = new Set<string>();
  const waiters = new Map<string, Array<() => void>>();
  const server = await listenHttp((req, body, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
    const [, kind, arg] = new URL(req.url ?? '/', 'http://127.0.0.1').pathname.split('/');
    const answer = (status: number, text: string | Buffer) => res.writeHead(status, { 'content-type': 'text/plain' }).end(text);
    if (kind === 'text') {
      answer(200, 'hello from the receiver\nOC_OUTPUT ver=42\n');
    } else if (kind === 'echo') {
      answer(200, body);
    } else if (kind === 'status') {
      answer(Number(arg), `status ${arg} auth=${req.headers.authorization ?? 'none'}\n`);
    } else if (kind === 'hold') {
      const key = arg ?? '';
      const release = () => !res.writableEnded && answer(200, `released ${key}\n`);
      if (released.has(key)) {
        release();
      } else {
        waiters.set(key, [...(waiters.get(key) ?? []), release]);
      }
    } else {
      answer(200, 'ok\n');
    }
  });
  return {
    url: (path: string) => `${server.url}${path}`,
    requests,
    /** Requests whose path starts with `prefix`. */
    seen: (prefix: string) => requests.filter((r) => r.url.startsWith(prefix)),
    release(key: string) {
      released.add(key);
      for (const answer of waiters.get(key) ?? []) {
        answer();
      }
      waiters.delete(key);
    },
    close: server.close,
  };
}

/** A running receiver (see `startReceiver`). */
export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** What a `runsEnv` block's tests read once its `before` hook ran. */
export interface RunsState {
  ctx: TestContext;
  receiver: Receiver;
  /** An api_token credential whose token is `apiToken`. */
  tokenCredential: number;
  apiToken: string;
}

/**
 * Call inside a describe block: its `before` starts an app with a worker, the local receiver and
 * an api_token credential, its `after` stops them. Returns the run client and the state it fills.
 */
export function runsEnv() {
  const state = { apiToken: `tok-${randomBytes(12).toString('hex')}` } as RunsState;
  const client = runsClient(() => state.ctx);
  before(async () => {
    state.ctx = await createTestContext({ worker: true });
    state.receiver = await startReceiver();
    state.tokenCredential = await client.createCredential({ name: unique('api'), type: 'api_token', token: state.apiToken });
  });
  after(async () => {
    await state.receiver?.close();
    await state.ctx?.close();
  });
  return Object.assign(state, client);
}

/** What an `sshRunsEnv` block's tests read once its `before` hook ran. */
export interface SshRunsState {
  ctx: TestContext;
  sshds: Sshd[];
  /** The first of `sshds`. */
  sshd: Sshd;
  /** The app's loopback URL. */
  baseUrl: string;
  /** Credentials for the test user: its key, its password, and a wrong password. */
  credentials: Record<'key' | 'password' | 'wrong', number>;
}

/**
 * Call inside a describe block: its `before` starts `servers` sshds (default 1), an app with a
 * worker listening on loopback (for `events`) and three credentials for them; its `after` kills
 * what `uniqueSleep` started and stops the rest. Returns the run client and the state it fills.
 */
export function sshRunsEnv(options: { servers?: number } = {}) {
  const state = { sshds: [], credentials: { key: 0, password: 0, wrong: 0 } } as unknown as SshRunsState;
  /** Every `sleep` command started through `uniqueSleep`. */
  const sleeps: string[] = [];
  const client = runsClient(() => state.ctx);
  before(async () => {
    state.sshds = await Promise.all(Array.from({ length: options.servers ?? 1 }, () => startSshd()));
    state.sshd = state.sshds[0] as Sshd;
    state.ctx = await createTestContext({ worker: true, env: { OPSCONDUCTOR_MAX_OUTPUT_BYTES: String(MAX_OUTPUT) } });
    await state.ctx.app.listen({ port: 0, host: '127.0.0.1' });
    state.baseUrl = `http://127.0.0.1:${(state.ctx.app.server.address() as AddressInfo).port}`;
    state.credentials.key = await client.createCredential({ type: 'ssh', username: SSH_TEST_USER, private_key: state.sshd.clientKey });
    state.credentials.password = await client.createCredential({ type: 'ssh', username: SSH_TEST_USER, password: SSH_TEST_PASSWORD });
    state.credentials.wrong = await client.createCredential({ type: 'password', username: SSH_TEST_USER, password: 'not-the-password-123' });
  });
  after(async () => {
    // A remote process that survived a kill would keep its step (and the worker's shutdown) waiting.
    for (const pid of sleeps.flatMap((command) => testUserProcesses(command))) {
      process.kill(pid, 'SIGKILL');
    }
    await state.ctx?.close();
    await Promise.all(state.sshds.map((s) => s.stop()));
  });
  return Object.assign(state, client, {
    createTarget: async (target: { port?: number; credential?: number } = {}) => {
      const res = await client.api('POST', '/targets', {
        name: unique('host'),
        host: '127.0.0.1',
        port: target.port ?? state.sshd.port,
        os_type: 'linux',
        protocol: 'ssh',
        credential_id: target.credential ?? state.credentials.key,
      });
      assert.equal(res.statusCode, 200, res.body);
      return res.json() as { id: number; name: string; port: number };
    },
    startRun: async (jobId: number, payload: Json) => {
      const res = await client.runJob(jobId, payload);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().status, 'queued');
      return res.json().job_run_id as number;
    },
    /** GET /job-runs/{id}/events as the admin over real HTTP, resuming after `lastEventId` when given. */
    events: (runId: number, lastEventId?: number) =>
      fetch(`${state.baseUrl}/job-runs/${runId}/events`, {
        headers: { authorization: `Bearer ${state.ctx.adminToken}`, ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }) },
      }),
    /** A `sleep` with a duration no other test uses, so `pgrep -f` finds exactly our process. */
    uniqueSleep: () => {
      const command = `sleep 3${String(randomInt(0, 1_000_000)).padStart(6, '0')}`;
      sleeps.push(command);
      return command;
    },
  });
}
