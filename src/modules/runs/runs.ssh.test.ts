import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../../test/app.ts';
import { freePort, SSH_TEST_PASSWORD, SSH_TEST_USER, type Sshd, sshdSkip, startSshd } from '../../../test/sshd.ts';

const FINAL = ['completed', 'failed', 'canceled', 'timed_out'];
const MAX_OUTPUT = 2048;
const MARKER = '\n[output truncated]\n';

type Json = Record<string, unknown>;
interface StepView {
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
}
interface TargetView {
  target_id: number | null;
  name: string | null;
  status: string;
  error: string | null;
}
interface RunView extends Json {
  id: number;
  status: string;
  trigger: string;
  summary: Record<string, number>;
  target_ids: number[];
  targets: TargetView[];
  steps: StepView[];
}
interface SseEvent {
  id: number;
  event: string;
  data: Json;
  at: number;
}

/** Every `sleep` command this file started (see `after`). */
const sleepsStarted: string[] = [];
/** A `sleep` with a duration no other test uses, so `pgrep -f` finds exactly our process. */
const uniqueSleep = () => {
  const command = `sleep 3${String(randomInt(0, 1_000_000)).padStart(6, '0')}`;
  sleepsStarted.push(command);
  return command;
};

/** PIDs of processes whose command line contains `pattern` (sshd runs on this machine). */
function pgrep(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Reads a Server-Sent Events body frame by frame, calling `onEvent` as each one arrives. */
async function readSse(body: ReadableStream<Uint8Array>, onEvent: (event: SseEvent) => void | Promise<void> = () => {}): Promise<SseEvent[]> {
  const events: SseEvent[] = [];
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      break;
    }
    buffer += decoder.decode(value, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of frame.split('\n')) {
        const match = /^([a-z]+): ?(.*)$/.exec(line);
        if (match) {
          fields[match[1] as string] = match[2] as string;
        }
      }
      if (fields.event === undefined && fields.data === undefined) {
        continue; // a comment (": connected", ": ping")
      }
      assert.match(fields.id ?? '', /^\d+$/, `every event frame has an id: ${frame}`);
      const event = { id: Number(fields.id), event: fields.event ?? 'message', data: JSON.parse(fields.data ?? '{}') as Json, at: Date.now() };
      events.push(event);
      await onEvent(event);
    }
  }
  return events;
}

/** Highest number of [started_at, finished_at) intervals open at the same instant. */
function maxOverlap(steps: StepView[]): number {
  const edges = steps.flatMap((s) => [
    { at: Date.parse(String(s.started_at)), delta: 1 },
    { at: Date.parse(String(s.finished_at)), delta: -1 },
  ]);
  edges.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let open = 0;
  let max = 0;
  for (const edge of edges) {
    open += edge.delta;
    max = Math.max(max, open);
  }
  return max;
}

describe('job runs over SSH against real OpenSSH servers', { skip: sshdSkip() }, () => {
  let ctx: TestContext;
  let sshds: Sshd[] = [];
  let sshd: Sshd;
  let baseUrl: string;
  const credentials: Record<'key' | 'password' | 'wrong', number> = { key: 0, password: 0, wrong: 0 };

  const api = async (method: 'GET' | 'POST' | 'PUT', url: string, payload?: unknown) => {
    const res = await ctx.request({ method, url, token: ctx.adminToken, ...(payload === undefined ? {} : { payload: payload as Json }) });
    return res;
  };
  const createCredential = async (payload: Json) => {
    const res = await api('POST', '/credentials', { name: unique('cred'), ...payload });
    assert.equal(res.statusCode, 200, res.body);
    return res.json().id as number;
  };
  const createTarget = async (options: { port?: number; credential?: number } = {}) => {
    const res = await api('POST', '/targets', {
      name: unique('host'),
      host: '127.0.0.1',
      port: options.port ?? sshd.port,
      os_type: 'linux',
      protocol: 'ssh',
      credential_id: options.credential ?? credentials.key,
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { id: number; name: string; port: number };
  };
  const createJob = async (payload: Json) => {
    const res = await api('POST', '/jobs', { name: unique('job'), ...payload });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as { id: number; name: string };
  };
  const startRun = async (jobId: number, payload: Json) => {
    const res = await api('POST', `/jobs/${jobId}/run`, payload);
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().status, 'queued');
    return res.json().job_run_id as number;
  };
  const getRun = async (id: number): Promise<RunView> => {
    const res = await api('GET', `/job-runs/${id}`);
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  };
  /** Polls every 100 ms until `done` holds (default: the run is final). */
  const waitForRun = async (id: number, done: (run: RunView) => boolean = (r) => FINAL.includes(r.status), timeoutMs = 20_000): Promise<RunView> => {
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
  };
  const waitUntil = async (what: string, check: () => boolean, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) {
        assert.fail(`timed out waiting for ${what}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stepOf = (run: RunView, targetId: number, index: number): StepView => {
    const step = run.steps.find((s) => s.target_id === targetId && s.step_index === index);
    assert.ok(step, `run ${run.id} has step ${index} for target ${targetId}`);
    return step;
  };
  const targetStatus = (run: RunView, targetId: number) => run.targets.find((t) => t.target_id === targetId)?.status;
  const events = (runId: number, lastEventId?: number) =>
    fetch(`${baseUrl}/job-runs/${runId}/events`, {
      headers: { authorization: `Bearer ${ctx.adminToken}`, ...(lastEventId === undefined ? {} : { 'last-event-id': String(lastEventId) }) },
    });

  before(async () => {
    sshds = await Promise.all([startSshd(), startSshd(), startSshd()]);
    sshd = sshds[0] as Sshd;
    ctx = await createTestContext({ worker: true, env: { OPSCONDUCTOR_MAX_OUTPUT_BYTES: String(MAX_OUTPUT) } });
    await ctx.app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(ctx.app.server.address() as AddressInfo).port}`;
    credentials.key = await createCredential({ type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey });
    credentials.password = await createCredential({ type: 'ssh', username: SSH_TEST_USER, password: SSH_TEST_PASSWORD });
    credentials.wrong = await createCredential({ type: 'password', username: SSH_TEST_USER, password: 'not-the-password-123' });
  });
  after(async () => {
    // A remote process that survived a kill would keep its step (and the worker's shutdown) waiting.
    for (const pid of sleepsStarted.flatMap((command) => pgrep(command))) {
      process.kill(pid, 'SIGKILL');
    }
    await ctx?.close();
    await Promise.all(sshds.map((s) => s.stop()));
  });

  test('done when: command, sftp upload from the file store, command reading the upload, on 3 sshd targets', async () => {
    const fileName = `payload/${unique('data')}.txt`;
    const content = `payload line 1 ${randomBytes(4).toString('hex')}\npayload line 2\n`;
    const put = await ctx.request({ method: 'PUT', url: `/files/${fileName}`, token: ctx.adminToken, headers: { 'content-type': 'application/octet-stream' }, payload: Buffer.from(content) });
    assert.equal(put.statusCode, 200, put.body);

    const targets = [];
    for (const server of sshds) {
      const key = await createCredential({ type: 'ssh', username: SSH_TEST_USER, private_key: server.clientKey });
      targets.push(await createTarget({ port: server.port, credential: key }));
    }
    const remote = '/tmp/oc-run-{{ run.id }}-{{ target.port }}.txt';
    const job = await createJob({
      steps: [
        { type: 'command', name: 'prepare', command: 'echo "hello from {{ target.name }}"; echo "OC_OUTPUT port={{ target.port }}"; echo warn >&2' },
        { type: 'sftp', name: 'upload', operation: 'upload', local_path: fileName, remote_path: remote },
        { type: 'command', name: 'verify', command: `cat ${remote} && echo "prepared on {{ steps.prepare.outputs.port }}" && rm ${remote}` },
      ],
    });
    const runId = await startRun(job.id, { target_ids: targets.map((t) => t.id) });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.summary, { succeeded: 3, failed: 0, unreachable: 0, timed_out: 0, canceled: 0, skipped: 0 });
    assert.deepEqual(
      run.targets.map((t) => t.status),
      ['succeeded', 'succeeded', 'succeeded'],
    );
    assert.equal(run.steps.length, 9);
    for (const target of targets) {
      const prepare = stepOf(run, target.id, 0);
      assert.equal(prepare.status, 'succeeded');
      assert.equal(prepare.exit_code, 0);
      assert.equal(prepare.stdout, `hello from ${target.name}\nOC_OUTPUT port=${target.port}\n`);
      assert.equal(prepare.stderr, 'warn\n');
      assert.deepEqual(prepare.outputs, { port: String(target.port) });
      const upload = stepOf(run, target.id, 1);
      assert.equal(upload.status, 'succeeded', upload.error ?? '');
      assert.equal(upload.exit_code, 0);
      assert.match(upload.stdout, new RegExp(`^uploaded ${Buffer.byteLength(content)} bytes`));
      const verify = stepOf(run, target.id, 2);
      assert.equal(verify.status, 'succeeded', verify.stderr);
      assert.equal(verify.exit_code, 0);
      assert.equal(verify.stdout, `${content}prepared on ${target.port}\n`);
      assert.ok(!existsSync(`/tmp/oc-run-${runId}-${target.port}.txt`), 'the verify step removed the upload');
      for (const step of [prepare, upload, verify]) {
        assert.ok(step.started_at && step.finished_at && step.duration_ms !== null);
      }
      assert.ok(Date.parse(String(prepare.finished_at)) <= Date.parse(String(upload.started_at)), 'steps of a target run in order');
      assert.ok(Date.parse(String(upload.finished_at)) <= Date.parse(String(verify.started_at)));
    }
  });

  test('node-first: a failed step stops only its target; unreachable (closed port, wrong password) is its own status; retry only_failed', async () => {
    const good = await createTarget();
    const bad = await createTarget();
    const closed = await createTarget({ port: await freePort() });
    const wrongPassword = await createTarget({ credential: credentials.wrong });
    const job = await createJob({
      allow_concurrent_runs: true,
      steps: [
        { type: 'command', name: 'check', command: `test "{{ target.id }}" != "${bad.id}" || { echo "bad target" >&2; exit 3; }` },
        { type: 'command', name: 'soft', command: 'echo soft; exit 5', continue_on_error: true },
        { type: 'command', name: 'last', command: 'echo "last on {{ target.name }} after {{ steps.soft.exit_code }}"' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [good.id, bad.id, closed.id, wrongPassword.id] });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'failed', JSON.stringify(run));
    assert.equal(run.summary.succeeded, 1);
    assert.equal(run.summary.failed, 1);
    assert.equal(run.summary.unreachable, 2);

    assert.equal(targetStatus(run, good.id), 'succeeded');
    assert.deepEqual(
      [0, 1, 2].map((i) => [stepOf(run, good.id, i).status, stepOf(run, good.id, i).exit_code]),
      [
        ['succeeded', 0],
        ['failed', 5],
        ['succeeded', 0],
      ],
      'continue_on_error lets the target go on after a failed step',
    );
    assert.equal(stepOf(run, good.id, 2).stdout, `last on ${good.name} after 5\n`);

    assert.equal(targetStatus(run, bad.id), 'failed');
    const badCheck = stepOf(run, bad.id, 0);
    assert.equal(badCheck.status, 'failed');
    assert.equal(badCheck.exit_code, 3);
    assert.equal(badCheck.stderr, 'bad target\n');
    assert.deepEqual(
      [1, 2].map((i) => stepOf(run, bad.id, i).status),
      ['skipped', 'skipped'],
      'a failed step stops its target',
    );

    for (const target of [closed, wrongPassword]) {
      assert.equal(targetStatus(run, target.id), 'unreachable');
      assert.notEqual(stepOf(run, target.id, 0).status, 'succeeded');
      assert.deepEqual(
        [1, 2].map((i) => stepOf(run, target.id, i).status),
        ['skipped', 'skipped'],
      );
    }
    assert.match(String(run.targets.find((t) => t.target_id === closed.id)?.error), /offline|ECONNREFUSED/);
    assert.match(String(run.targets.find((t) => t.target_id === wrongPassword.id)?.error), /auth/);

    const retried = await api('POST', `/job-runs/${runId}/retry`, { only_failed: true });
    assert.equal(retried.statusCode, 200, retried.body);
    assert.equal(retried.json().status, 'queued');
    const retry = await waitForRun(retried.json().job_run_id);
    assert.equal(retry.trigger, 'retry');
    assert.equal(retry.retry_of, runId);
    assert.deepEqual(
      retry.target_ids,
      [bad.id, closed.id, wrongPassword.id].sort((a, b) => a - b),
      'only the targets that did not succeed are retried',
    );
    assert.deepEqual(
      retry.targets.map((t) => t.target_id),
      [bad.id, closed.id, wrongPassword.id].sort((a, b) => a - b),
    );
    assert.equal(retry.summary.failed, 1);
    assert.equal(retry.summary.unreachable, 2);

    const all = await api('POST', `/job-runs/${runId}/retry`, { only_failed: false });
    assert.equal(all.statusCode, 200, all.body);
    const full = await waitForRun(all.json().job_run_id);
    assert.equal(full.targets.length, 4, 'only_failed: false retries every target');
  });

  test('templates render params, target, job, run and earlier steps; secrets are masked in output, events and logs', async () => {
    const secret = `hunter-${randomBytes(8).toString('hex')}`;
    const target = await createTarget({ credential: credentials.password });
    const job = await createJob({
      parameters: { greeting: { type: 'string', default: 'hi' }, times: { type: 'number', required: true }, token: { type: 'string', secret: true, required: true } },
      steps: [
        { type: 'command', name: 'first', command: 'echo "OC_OUTPUT color=blue"; echo "OC_OUTPUT size={{ params.times }}"; exit 0' },
        {
          type: 'command',
          name: 'render',
          command:
            'echo "g={{ params.greeting }} n={{ params.times }} t={{ target.name }} h={{ target.host }}:{{ target.port }} j={{ job.name }}/{{ job.id }} r={{ run.id }}/{{ run.trigger }} c={{ steps.first.outputs.color }} s={{ steps[0].outputs.size }} e={{ steps.first.exit_code }}"',
        },
        { type: 'command', name: 'secrets', command: `echo "tok={{ params.token }}"; echo "pw=${SSH_TEST_PASSWORD}" >&2` },
        { type: 'command', name: 'skipped_by_when', command: 'echo should-not-run', when: '{% if steps.first.outputs.color == "red" %}yes{% endif %}' },
        { type: 'command', name: 'runs_by_when', command: 'echo ran', when: '{{ steps.render.exit_code | plus: 1 }}' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [target.id], parameters: { times: 7, token: secret } });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.deepEqual(run.parameters, { greeting: 'hi', times: 7, token: '***' });
    assert.deepEqual(stepOf(run, target.id, 0).outputs, { color: 'blue', size: '7' });
    assert.equal(stepOf(run, target.id, 1).stdout, `g=hi n=7 t=${target.name} h=127.0.0.1:${sshd.port} j=${job.name}/${job.id} r=${runId}/manual c=blue s=7 e=0\n`);
    const secrets = stepOf(run, target.id, 2);
    assert.equal(secrets.stdout, 'tok=***\n', 'a secret parameter is masked in stored stdout');
    assert.equal(secrets.stderr, 'pw=***\n', 'the credential password is masked in stored stderr');
    assert.equal(stepOf(run, target.id, 3).status, 'skipped');
    assert.equal(stepOf(run, target.id, 3).stdout, '');
    assert.equal(stepOf(run, target.id, 4).status, 'succeeded');
    assert.equal(stepOf(run, target.id, 4).stdout, 'ran\n');

    const res = await events(runId);
    assert.equal(res.status, 200);
    const replay = await readSse(res.body as ReadableStream<Uint8Array>);
    const outputs = replay.filter((e) => e.event === 'output' && e.data.step_index === 2);
    assert.ok(outputs.some((e) => e.data.text === 'tok=***\n'), JSON.stringify(outputs));
    assert.ok(outputs.some((e) => e.data.text === 'pw=***\n'), JSON.stringify(outputs));
    const everything = JSON.stringify(replay);
    assert.ok(!everything.includes(secret) && !everything.includes(SSH_TEST_PASSWORD), 'no secret in any event');
    const tail = await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=2&stream=stderr`);
    assert.equal(tail.json().data, 'pw=***\n');
    const logs = ctx.logs.text();
    assert.ok(!logs.includes(secret), 'the secret parameter is not logged');
    assert.ok(!logs.includes(SSH_TEST_PASSWORD), 'the credential password is not logged');
  });

  test('output is capped per step per target at OPSCONDUCTOR_MAX_OUTPUT_BYTES with a visible marker', async () => {
    const target = await createTarget();
    const job = await createJob({
      steps: [
        { type: 'command', name: 'big', command: 'yes 0123456789abcdef | head -c 200000; yes err | head -c 100000 >&2' },
        { type: 'command', name: 'small', command: 'echo small' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    const big = stepOf(run, target.id, 0);
    assert.equal(big.truncated, true);
    assert.ok(big.stdout.endsWith(MARKER), 'stdout ends with the truncation marker');
    assert.equal(big.stdout, '0123456789abcdef\n'.repeat(200_000).slice(0, MAX_OUTPUT) + MARKER);
    assert.ok(big.stderr.endsWith(MARKER), 'stderr is capped too');
    assert.equal(Buffer.byteLength(big.stderr), MAX_OUTPUT + MARKER.length);
    const small = stepOf(run, target.id, 1);
    assert.equal(small.truncated, false);
    assert.equal(small.stdout, 'small\n');
  });

  test('live output is capped like stored output: output events and the /output tail stop at OPSCONDUCTOR_MAX_OUTPUT_BYTES', async () => {
    const target = await createTarget();
    const job = await createJob({ steps: [{ type: 'command', name: 'big', command: 'yes 0123456789abcdef | head -c 200000' }] });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(stepOf(run, target.id, 0).truncated, true);

    const res = await events(runId);
    const streamed = (await readSse(res.body as ReadableStream<Uint8Array>)).filter((e) => e.event === 'output');
    const streamedBytes = Buffer.byteLength(streamed.map((e) => String(e.data.text)).join(''));
    const tail = await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0`);
    assert.equal(tail.statusCode, 200, tail.body);
    const tailBytes = Buffer.byteLength(tail.json().data);
    assert.ok(
      streamedBytes <= MAX_OUTPUT + MARKER.length && tailBytes <= MAX_OUTPUT + MARKER.length,
      `output events carried ${streamedBytes} bytes and the /output tail returned ${tailBytes} bytes for a cap of ${MAX_OUTPUT}`,
    );
  });

  test('a secret split across output chunks is still masked in the live output events', async () => {
    const secret = `split-${randomBytes(8).toString('hex')}`;
    const target = await createTarget();
    const job = await createJob({
      parameters: { token: { type: 'string', secret: true, required: true } },
      steps: [{ type: 'command', name: 'halves', command: `printf '%s' "{{ params.token | slice: 0, 10 }}"; sleep 0.5; printf '%s\\n' "{{ params.token | slice: 10, 100 }}"` }],
    });
    const runId = await startRun(job.id, { target_ids: [target.id], parameters: { token: secret } });
    const run = await waitForRun(runId);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(stepOf(run, target.id, 0).stdout, '***\n', 'stored stdout is masked');
    const streamed = (await readSse((await events(runId)).body as ReadableStream<Uint8Array>)).filter((e) => e.event === 'output');
    assert.ok(streamed.length >= 1);
    const text = streamed.map((e) => String(e.data.text)).join('');
    assert.ok(!text.includes(secret), `the output events reassemble the secret: ${JSON.stringify(streamed.map((e) => e.data.text))}`);
    const tail = (await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0`)).json();
    assert.ok(!String(tail.data).includes(secret), `the /output tail shows the secret: ${JSON.stringify(tail.data)}`);
  });

  test('retries re-run a failed step until it succeeds', async () => {
    const target = await createTarget();
    const counter = `/tmp/oc-retries-${unique()}`;
    const job = await createJob({
      steps: [
        { type: 'command', name: 'flaky', command: `echo try >> ${counter}; test "$(wc -l < ${counter})" -ge 3`, retries: 3 },
        { type: 'command', name: 'count', command: `wc -l < ${counter}; rm -f ${counter}` },
      ],
    });
    const run = await waitForRun(await startRun(job.id, { target_ids: [target.id] }));
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(stepOf(run, target.id, 0).status, 'succeeded');
    assert.equal(stepOf(run, target.id, 1).stdout.trim(), '3', 'two failed attempts, then success; no further attempts');
  });


  test('a step past its timeout_s is timed_out and its remote process is killed', async () => {
    const target = await createTarget();
    const sleep = uniqueSleep();
    const job = await createJob({
      steps: [
        { type: 'command', name: 'slow', command: `echo started; ${sleep}`, timeout_s: 2 },
        { type: 'command', name: 'after', command: 'echo after' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    await waitUntil(`${sleep} to run on the sshd host`, () => pgrep(sleep).length > 0);
    const run = await waitForRun(runId);
    const slow = stepOf(run, target.id, 0);
    assert.equal(slow.status, 'timed_out', JSON.stringify(slow));
    assert.equal(slow.stdout, 'started\n');
    assert.ok((slow.duration_ms ?? 0) >= 1900 && (slow.duration_ms ?? 0) < 10_000, `duration ${slow.duration_ms}`);
    assert.equal(stepOf(run, target.id, 1).status, 'skipped');
    assert.equal(targetStatus(run, target.id), 'timed_out');
    assert.equal(run.summary.timed_out, 1);
    assert.equal(run.summary.failed, 0, 'a timeout is not a failure');
    assert.notEqual(run.status, 'completed');
    await waitUntil(`${sleep} to be gone from the sshd host`, () => pgrep(sleep).length === 0, 3000);
  });

  test('the job timeout_s ends the whole run as timed_out and kills what is running', async () => {
    const targets = [await createTarget(), await createTarget()];
    const sleep = uniqueSleep();
    const job = await createJob({ timeout_s: 2, concurrency: 1, steps: [{ type: 'command', name: 'slow', command: sleep, timeout_s: 600 }] });
    const runId = await startRun(job.id, { target_ids: targets.map((t) => t.id) });
    await waitUntil(`${sleep} to run on the sshd host`, () => pgrep(sleep).length > 0);
    const running = await getRun(runId);
    const firstId = running.targets.find((t) => t.status === 'running')?.target_id;
    const second = running.targets.find((t) => t.status === 'pending');
    assert.ok(firstId && second, `one target running, one pending under concurrency 1: ${JSON.stringify(running.targets)}`);
    const secondId = second.target_id as number;
    const run = await waitForRun(runId, (r) => FINAL.includes(r.status) || stepOf(r, secondId, 0).started_at !== null);
    const deadline = Date.parse(String(run.started_at)) + 2000;
    const late = stepOf(run, secondId, 0).started_at;
    assert.equal(late, null, `the target still pending at the run deadline (${new Date(deadline).toISOString()}) must not start; its step started at ${late}`);
    assert.equal(run.status, 'timed_out', JSON.stringify(run));
    assert.deepEqual(
      run.targets.map((t) => t.status),
      ['timed_out', 'timed_out'],
    );
    assert.equal(stepOf(run, firstId, 0).status, 'timed_out');
    assert.ok(run.steps.every((s) => s.status !== 'failed'));
    await waitUntil(`${sleep} to be gone from the sshd host`, () => pgrep(sleep).length === 0, 3000);
  });

  test('cancel kills the running step, cancels pending targets; canceling a finished run is 409', async () => {
    const targets = [await createTarget(), await createTarget(), await createTarget()];
    const sleep = uniqueSleep();
    const job = await createJob({
      concurrency: 1,
      steps: [
        { type: 'command', name: 'slow', command: `echo begin; ${sleep}`, timeout_s: 600 },
        { type: 'command', name: 'after', command: 'echo after' },
      ],
    });
    const runId = await startRun(job.id, { target_ids: targets.map((t) => t.id) });
    await waitUntil(`${sleep} to run on the sshd host`, () => pgrep(sleep).length > 0);
    const running = await getRun(runId);
    assert.equal(running.status, 'running');
    const active = running.targets.find((t) => t.status === 'running');
    assert.ok(active, 'one target is running');
    assert.equal(running.targets.filter((t) => t.status === 'pending').length, 2, 'concurrency 1 keeps the others pending');

    const canceled = await api('POST', `/job-runs/${runId}/cancel`);
    assert.equal(canceled.statusCode, 200, canceled.body);
    const run = await waitForRun(runId);
    assert.equal(run.status, 'canceled', JSON.stringify(run));
    assert.deepEqual(
      run.targets.map((t) => t.status),
      ['canceled', 'canceled', 'canceled'],
    );
    assert.equal(run.summary.canceled, 3);
    const killed = stepOf(run, active.target_id as number, 0);
    assert.equal(killed.status, 'canceled', 'the running step is canceled, not failed');
    assert.equal(killed.stdout, 'begin\n');
    assert.equal(stepOf(run, active.target_id as number, 1).status, 'skipped');
    for (const t of targets.filter((x) => x.id !== active.target_id)) {
      assert.equal(stepOf(run, t.id, 0).started_at, null, 'pending targets never started');
      assert.notEqual(stepOf(run, t.id, 0).status, 'succeeded');
    }
    await waitUntil(`${sleep} to be gone from the sshd host`, () => pgrep(sleep).length === 0, 3000);

    const again = await api('POST', `/job-runs/${runId}/cancel`);
    assert.equal(again.statusCode, 409, again.body);
  });

  test('concurrency caps the targets in flight: 5 targets, concurrency 2, never more than 2 steps at once', async () => {
    const targets = [];
    for (let i = 0; i < 5; i++) {
      targets.push(await createTarget());
    }
    const job = await createJob({ concurrency: 2, steps: [{ type: 'command', name: 'nap', command: 'sleep 1' }] });
    const run = await waitForRun(await startRun(job.id, { target_ids: targets.map((t) => t.id) }), undefined, 30_000);
    assert.equal(run.status, 'completed', JSON.stringify(run));
    assert.equal(run.steps.length, 5);
    const overlap = maxOverlap(run.steps);
    assert.ok(overlap <= 2, `at most 2 targets in flight, saw ${overlap}`);
    assert.equal(overlap, 2, 'the run used its 2 slots');
  });

  test('SSE: events arrive live while the step runs, every frame has an id, the stream ends after run_finished, Last-Event-ID resumes', async () => {
    const target = await createTarget();
    const job = await createJob({ steps: [{ type: 'command', name: 'live', command: 'echo first; sleep 2; echo second' }] });
    const runId = await startRun(job.id, { target_ids: [target.id] });
    const res = await events(runId);
    assert.equal(res.status, 200);
    assert.match(String(res.headers.get('content-type')), /^text\/event-stream/);

    let liveChecked = false;
    const received = await readSse(res.body as ReadableStream<Uint8Array>, async (event) => {
      if (!liveChecked && event.event === 'output' && String(event.data.text).includes('first')) {
        liveChecked = true;
        const run = await getRun(runId);
        const step = stepOf(run, target.id, 0);
        assert.equal(step.status, 'running', 'the first output arrived while the step was still running');
        assert.equal(step.finished_at, null);
        const tail = (await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0&offset=0`)).json();
        assert.equal(tail.data, 'first\n');
        assert.equal(tail.next_offset, 6);
        assert.equal(tail.complete, false);
      }
    });
    assert.ok(liveChecked, 'an output event with "first" arrived');
    const types = received.map((e) => e.event);
    assert.equal(types.at(-1), 'run_finished', 'the stream ends right after run_finished');
    assert.deepEqual(
      types.filter((t) => t !== 'output'),
      ['step_started', 'step_finished', 'target_finished', 'run_finished'],
    );
    const ids = received.map((e) => e.id);
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => a - b),
      'ids increase',
    );
    assert.equal(new Set(ids).size, ids.length);
    const output = received.filter((e) => e.event === 'output');
    assert.equal(output.map((e) => e.data.text).join(''), 'first\nsecond\n');
    const firstOutput = output.find((e) => String(e.data.text).includes('first')) as SseEvent;
    const stepFinished = received.find((e) => e.event === 'step_finished') as SseEvent;
    assert.ok(stepFinished.at - firstOutput.at >= 1000, `first output came ${stepFinished.at - firstOutput.at} ms before the step finished`);
    assert.equal(firstOutput.data.target_id, target.id);
    assert.equal(firstOutput.data.step_index, 0);
    assert.equal(firstOutput.data.stream, 'stdout');
    assert.equal(stepFinished.data.status, 'succeeded');
    assert.equal(stepFinished.data.exit_code, 0);
    assert.equal(received.find((e) => e.event === 'target_finished')?.data.status, 'succeeded');
    assert.equal(received.at(-1)?.data.status, 'completed');

    const resumeAfter = firstOutput.id;
    const resumed = await events(runId, resumeAfter);
    assert.equal(resumed.status, 200);
    const rest = await readSse(resumed.body as ReadableStream<Uint8Array>);
    assert.deepEqual(
      rest.map((e) => [e.id, e.event]),
      received.filter((e) => e.id > resumeAfter).map((e) => [e.id, e.event]),
      'only the events after Last-Event-ID, ending with run_finished',
    );

    const run = await getRun(runId);
    assert.equal(run.status, 'completed');
    assert.equal(stepOf(run, target.id, 0).stdout, 'first\nsecond\n');
    const tail = (await api('GET', `/job-runs/${runId}/output?target_id=${target.id}&step_index=0&offset=6`)).json();
    assert.equal(tail.data, 'second\n');
    assert.equal(tail.offset, 6);
    assert.equal(tail.next_offset, 13);
    assert.equal(tail.complete, true);

    assert.equal((await api('GET', '/job-runs/999999/events')).statusCode, 404);
    assert.equal((await fetch(`${baseUrl}/job-runs/${runId}/events`)).status, 401, 'the event stream needs a token');
  });
});
