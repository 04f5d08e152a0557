/**
 * Executor workers as separate processes on one PostgreSQL (DESIGN §2, §5): the real CLI runs an
 * API-only `serve`, a `scheduler` (whose reaper sweeps expired leases) and `worker` processes,
 * all on one fresh database, against a private sshd. A worker killed with SIGKILL mid-run leaves
 * leases that expire: its targets end `failed` / `worker_lost`, the run finishes and nothing is
 * re-run. Two workers share a run's targets, and work is dispatched on NOTIFY, not on a poll.
 *
 * Several processes share the database, so these tests exist only on a real PostgreSQL
 * (OPSCONDUCTOR_TEST_DATABASE_URL); on PGlite nothing is registered.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { rmSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { createTestDatabase, type TestDatabase, usesPostgres } from '../../test/db.ts';
import { alive, callPort, freePortRange, killProc, type Proc, procs, sleep, spawnCli, tempDirs, waitFor, waitForRunning } from '../../test/procs.ts';
import { killTestUserProcesses, SSH_TEST_USER, type Sshd, sshdSkip, startSshd, testUserProcesses } from '../../test/sshd.ts';

/** Short leases keep the test fast: renewal every 1 s, reaper sweep every 1.5 s. */
const LEASE_S = 3;
const ADMIN_PASSWORD = 'workers-test-admin-password-1';
/**
 * Most a run may wait for its first run-target to start. Workers are woken by NOTIFY; their
 * safety-net poll is every 2 s, so a poll-only dispatch would miss this bound most of the time
 * (two runs are measured).
 */
const DISPATCH_MS = 750;

// ---- API and database ------------------------------------------------------------------------------

interface RunDetail {
  id: number;
  status: string;
  summary: Record<string, number>;
  started_at: string | null;
  finished_at: string | null;
  targets: Array<{ target_id: number; status: string; error: string | null; started_at: string | null; finished_at: string | null }>;
  steps: Array<{ target_id: number; step_index: number; status: string; stdout: string; started_at: string | null }>;
}

interface TargetRow {
  target_id: number;
  status: string;
  error: string | null;
  worker_id: string | null;
  lease_until: Date | null;
  started_at: Date | null;
  finished_at: Date | null;
}

interface StepRow {
  target_id: number;
  step_index: number;
  status: string;
  attempts: number;
  started_at: Date | null;
  finished_at: Date | null;
}

if (usesPostgres) {
  describe('executor workers as separate processes on one PostgreSQL', { skip: sshdSkip(), concurrency: false }, () => {
    let sshd: Sshd;
    let testDb: TestDatabase;
    let client: pg.Client;
    let env: Record<string, string>;
    let port: number;
    let token: string;
    let api: Proc;
    let scheduler: Proc;
    let credentialId: number;
    const remoteCommands: string[] = [];
    /** The worker scenario A kills. */
    let firstWorker: Proc | undefined;
    /** Workers started when it died; scenario B uses them. */
    let survivors: Array<Proc | undefined> = [];
    /** The run whose worker was killed (scenario A), for the follow-up checks. */
    let lostRun: { runId: number; targets: number[] } | undefined;

    const call = <T>(path: string, init: { method?: string; json?: unknown } = {}) => callPort<T>(port, path, { ...init, token });
    const post = async <T>(path: string, json: unknown): Promise<T> => {
      const res = await call<T>(path, { method: 'POST', json });
      assert.equal(res.status, 200, `POST ${path}: ${JSON.stringify(res.body)}`);
      return res.body;
    };
    const getRun = async (id: number): Promise<RunDetail> => {
      const res = await call<RunDetail>(`/job-runs/${id}`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return res.body;
    };
    const createTargets = async (count: number): Promise<number[]> => {
      const ids: number[] = [];
      for (let i = 0; i < count; i++) {
        const target = await post<{ id: number }>('/targets', {
          name: `host-${randomBytes(4).toString('hex')}`,
          host: '127.0.0.1',
          port: sshd.port,
          os_type: 'linux',
          protocol: 'ssh',
          credential_id: credentialId,
        });
        ids.push(target.id);
      }
      return ids;
    };
    const createJob = async (command: string, concurrency: number): Promise<number> => {
      const job = await post<{ id: number }>('/jobs', {
        name: `job-${randomBytes(4).toString('hex')}`,
        steps: [{ type: 'command', name: 'work', command, timeout_s: 120 }],
        concurrency,
        timeout_s: 120,
      });
      return job.id;
    };
    const targetRows = async (runId: number): Promise<TargetRow[]> =>
      (
        await client.query<TargetRow>(
          'select target_id, status, error, worker_id, lease_until, started_at, finished_at from job_run_targets where run_id = $1 order by target_id',
          [runId],
        )
      ).rows;
    const stepRows = async (runId: number): Promise<StepRow[]> =>
      (
        await client.query<StepRow>(
          'select target_id, step_index, status, attempts, started_at, finished_at from job_run_steps where run_id = $1 order by target_id, step_index',
          [runId],
        )
      ).rows;
    /** Starts `worker --concurrency n` (background processes log "<role> running" at info once their loops run). */
    const spawnWorker = (name: string, concurrency: number): Proc => spawnCli(name, ['worker', '--concurrency', String(concurrency), '--log-level', 'info'], env);
    /** `proc` once it dispatches, or a new worker when it is gone. */
    const readyWorker = async (proc: Proc | undefined, name: string, concurrency: number): Promise<Proc> => {
      const worker = proc && alive(proc) ? proc : spawnWorker(name, concurrency);
      await waitForRunning(worker, 'worker');
      return worker;
    };
    /** A worker id is `host:pid:random`: the process that holds (or held) a run-target. */
    const pidOf = (workerId: string | null) => Number(workerId?.split(':')[1]);

    before(async () => {
      sshd = await startSshd();
      testDb = await createTestDatabase();
      assert.ok(testDb.url, 'a PostgreSQL test database');
      client = new pg.Client({ connectionString: testDb.url });
      await client.connect();
      port = await freePortRange();
      env = {
        OPSCONDUCTOR_DATABASE_URL: testDb.url,
        OPSCONDUCTOR_MASTER_KEY: randomBytes(32).toString('base64'),
        OPSCONDUCTOR_ADMIN_PASSWORD: ADMIN_PASSWORD,
        OPSCONDUCTOR_LEASE_S: String(LEASE_S),
        OPSCONDUCTOR_LOG_LEVEL: 'warn',
        OPSCONDUCTOR_DB_POOL_MAX: '6',
      };
      // The API serves routes only (no worker, no reaper); the scheduler's reaper sweeps leases.
      // All three boot at once (each tsx start costs seconds).
      api = spawnCli('serve', ['serve', '--services', 'auth,users,credentials,targets,jobs', '--port', String(port)], env);
      scheduler = spawnCli('scheduler', ['scheduler', '--log-level', 'info'], env);
      firstWorker = spawnWorker('worker-1', 10);
      await waitFor(
        'the API healthy',
        async () => {
          try {
            return (await call(`/health`)).status === 200;
          } catch {
            return false; // not listening yet
          }
        },
        60_000,
        150,
        api,
      );
      await waitForRunning(scheduler, 'scheduler');
      token = (await post<{ access_token: string }>('/auth/login', { username: 'admin', password: ADMIN_PASSWORD })).access_token;
      credentialId = (await post<{ id: number }>('/credentials', { name: `cred-${randomBytes(4).toString('hex')}`, type: 'ssh', username: SSH_TEST_USER, private_key: sshd.clientKey })).id;
    });

    after(async () => {
      await Promise.all(procs.map(killProc));
      // A SIGKILLed worker leaves its remote commands running on the sshd host.
      remoteCommands.forEach(killTestUserProcesses);
      await client?.end();
      await testDb?.drop();
      await sshd?.stop();
      for (const dir of tempDirs) {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('a worker killed mid-run: its targets end failed/worker_lost within 2 × lease, the run fails, nothing is re-run', async (ctx) => {
      const targets = await createTargets(3);
      const doomed = await readyWorker(firstWorker, 'worker-1', 10);
      // A sleep no other test runs (3xxxx seconds): the remote processes can be counted exactly.
      const command = `sleep 3${randomInt(1000, 10_000)}`;
      remoteCommands.push(command);
      const jobId = await createJob(command, 10);
      const requestedAt = Date.now();
      const { job_run_id: runId } = await post<{ job_run_id: number }>(`/jobs/${jobId}/run`, { target_ids: targets });
      lostRun = { runId, targets };

      await waitFor(
        'the run and its 3 targets running',
        async () => {
          const run = await getRun(runId);
          return run.status === 'running' && run.targets.length === 3 && run.targets.every((t) => t.status === 'running') && run.steps.every((s) => s.status === 'running');
        },
        20_000,
      );
      const sleeps = await waitFor('3 remote sleeps started', () => testUserProcesses(command, { exact: true }).length === 3 && testUserProcesses(command, { exact: true }), 10_000);

      // While the worker lives, its leases are renewed: longer than one lease later nothing was reaped.
      await sleep(LEASE_S * 1000 + 1500);
      const held = await targetRows(runId);
      const { rows: dbNow } = await client.query<{ now: Date }>('select now()');
      for (const row of held) {
        assert.equal(row.status, 'running', `target ${row.target_id} reaped while its worker was alive: ${JSON.stringify(row)}`);
        assert.equal(pidOf(row.worker_id), doomed.child.pid, `held by worker-1: ${row.worker_id}`);
        assert.ok(row.lease_until && row.lease_until > (dbNow[0] as { now: Date }).now, `lease of target ${row.target_id} renewed`);
      }
      const latencyMs = Math.min(...held.map((row) => (row.started_at as Date).getTime())) - requestedAt;
      assert.ok(latencyMs < DISPATCH_MS, `first run-target started ${latencyMs} ms after POST /jobs/{id}/run`);
      const stepsBefore = await stepRows(runId);
      assert.equal(stepsBefore.length, 3);
      for (const s of stepsBefore) {
        assert.equal(s.status, 'running');
        assert.ok(s.started_at, 'step started');
      }

      doomed.child.kill('SIGKILL');
      const killedAt = Date.now();
      await doomed.exited;
      // Live workers from here on (scenario B's): they must not pick up what the dead one held.
      survivors = [spawnWorker('worker-2', 5), spawnWorker('worker-3', 5)];

      const lost = await waitFor(
        'the dead worker’s targets reaped',
        async () => {
          const rows = await targetRows(runId);
          return rows.every((row) => row.status !== 'running') && rows;
        },
        4 * LEASE_S * 1000,
      );
      const reapedAfterMs = Date.now() - killedAt;
      assert.ok(reapedAfterMs <= 2 * LEASE_S * 1000 + 1500, `reaped ${reapedAfterMs} ms after the kill (lease ${LEASE_S} s)`);
      ctx.diagnostic(`dispatch latency ${latencyMs} ms; targets reaped ${reapedAfterMs} ms after the kill`);
      for (const [i, row] of lost.entries()) {
        const prior = held[i] as TargetRow;
        assert.equal(row.target_id, prior.target_id);
        assert.equal(row.status, 'failed', JSON.stringify(row));
        assert.equal(row.error, 'worker_lost');
        assert.equal(row.worker_id, prior.worker_id, 'still attributed to the dead worker');
        assert.equal(row.started_at?.getTime(), prior.started_at?.getTime());
        assert.ok(row.finished_at);
        assert.equal(row.lease_until, null);
      }

      // The run finishes in the same sweep: never stuck in `running`.
      const run = await waitFor(
        'the run finished',
        async () => {
          const r = await getRun(runId);
          return r.status !== 'running' && r;
        },
        2000,
      );
      assert.equal(run.status, 'failed');
      assert.equal(run.summary.failed, 3);
      assert.equal(run.summary.succeeded, 0);
      assert.ok(run.finished_at);
      assert.deepEqual(
        run.targets.map((t) => [t.target_id, t.status, t.error]),
        targets.map((id) => [id, 'failed', 'worker_lost']),
      );

      // Commands are never silently re-run: with live workers and more reaper sweeps, the steps
      // are untouched and no new remote process appeared (only the orphans of the dead worker).
      await Promise.all(survivors.map((w) => w && waitForRunning(w, 'worker')));
      await sleep(LEASE_S * 1000 + 1000);
      const stepsAfter = await stepRows(runId);
      assert.deepEqual(
        stepsAfter.map((s) => [s.target_id, s.step_index, s.attempts, s.started_at?.getTime()]),
        stepsBefore.map((s) => [s.target_id, s.step_index, s.attempts, s.started_at?.getTime()]),
        'steps not re-run',
      );
      const remaining = testUserProcesses(command, { exact: true });
      assert.ok(remaining.length <= 3 && remaining.every((pid) => sleeps.includes(pid)), `remote sleeps before the kill ${sleeps.join()}, now ${remaining.join()}`);
      assert.deepEqual(
        (await targetRows(runId)).map((row) => [row.status, row.error, row.worker_id]),
        lost.map((row) => [row.status, row.error, row.worker_id]),
        'the lost targets stay lost',
      );
      assert.equal((await getRun(runId)).status, 'failed');
      // Only the SIGKILLed worker is gone; the others kept running.
      assert.ok([api, scheduler, ...survivors].every((p) => p && alive(p)));
    });

    test(
      'after worker_lost, the lost steps are finished too: a finished run shows no running step, output tails end',
      async () => {
        assert.ok(lostRun, 'the killed-worker scenario ran');
        const run = await getRun(lostRun.runId);
        assert.equal(run.status, 'failed');
        for (const targetId of lostRun.targets) {
          const tail: { status: number; body: { complete: boolean } } = await call(`/job-runs/${lostRun.runId}/output?target_id=${targetId}&step_index=0`);
          assert.equal(tail.status, 200);
          assert.equal(tail.body.complete, true, `GET /job-runs/${lostRun.runId}/output for target ${targetId}: a follower of a lost step waits forever`);
        }
        for (const step of run.steps) {
          assert.ok(!['pending', 'running'].includes(step.status), `target ${step.target_id} step ${step.step_index} is still ${step.status} in a ${run.status} run`);
        }
      },
    );

    test(
      'after worker_lost, live viewers get one target_finished event per lost target',
      async () => {
        assert.ok(lostRun, 'the killed-worker scenario ran');
        const { rows } = await client.query<{ target_id: number | null; data: { status?: string; error?: string } }>(
          `select target_id, data from run_events where run_id = $1 and type = 'target_finished' order by target_id`,
          [lostRun.runId],
        );
        assert.deepEqual(
          rows.map((e) => [e.target_id, e.data.status, e.data.error]),
          lostRun.targets.map((id) => [id, 'failed', 'worker_lost']),
        );
      },
    );

    test('two workers on the same PostgreSQL share a run; dispatch is immediate, not a poll', async (ctx) => {
      const targets = await createTargets(10);
      const workers = await Promise.all([readyWorker(survivors[0], 'worker-2b', 5), readyWorker(survivors[1], 'worker-3b', 5)]);
      const jobId = await createJob('sleep 1; echo $PPID', 10);

      const requestedAt = Date.now();
      const { job_run_id: runId } = await post<{ job_run_id: number }>(`/jobs/${jobId}/run`, { target_ids: targets });
      const run = await waitFor(
        'the run finished',
        async () => {
          const r = await getRun(runId);
          return !['queued', 'running'].includes(r.status) && r;
        },
        30_000,
        200,
      );
      assert.equal(run.status, 'completed', JSON.stringify(run.targets));
      assert.equal(run.summary.succeeded, 10);

      const rows = await targetRows(runId);
      assert.equal(rows.length, 10);
      assert.ok(rows.every((t) => t.status === 'succeeded' && t.started_at && t.finished_at));
      const workerIds = [...new Set(rows.map((t) => t.worker_id))];
      assert.equal(workerIds.length, 2, `run-targets executed by ${JSON.stringify(rows.map((t) => t.worker_id))}`);
      assert.deepEqual(workerIds.map(pidOf).sort(), workers.map((w) => w.child.pid).sort(), 'the worker ids are the two worker processes');

      // Each worker stays within its --concurrency 5, and both ran at the same time (more than 5 at once).
      const events = rows.flatMap((t) => [
        { at: (t.started_at as Date).getTime(), delta: 1, worker: t.worker_id },
        { at: (t.finished_at as Date).getTime(), delta: -1, worker: t.worker_id },
      ]);
      events.sort((a, b) => a.at - b.at || a.delta - b.delta);
      const inFlight = new Map<string | null, number>();
      let total = 0;
      let peak = 0;
      for (const e of events) {
        const n = (inFlight.get(e.worker) ?? 0) + e.delta;
        inFlight.set(e.worker, n);
        assert.ok(n <= 5, `worker ${e.worker} ran ${n} run-targets at once`);
        total += e.delta;
        peak = Math.max(peak, total);
      }
      assert.ok(peak > 5, `at most ${peak} run-targets ran at once`);

      // Each target ran its own remote command, in its own SSH session.
      const ppids = run.steps.map((s) => s.stdout.trim());
      assert.ok(ppids.every((p) => /^\d+$/.test(p)), JSON.stringify(ppids));
      assert.equal(new Set(ppids).size, 10);

      // Woken by NOTIFY: the first target started well within the 2 s safety-net poll.
      const firstStart = Math.min(...rows.map((t) => (t.started_at as Date).getTime()));
      const latencyMs = firstStart - requestedAt;
      assert.ok(latencyMs < DISPATCH_MS, `first run-target started ${latencyMs} ms after POST /jobs/{id}/run`);
      ctx.diagnostic(`dispatch latency ${latencyMs} ms, peak ${peak} run-targets at once, run ${run.started_at} → ${run.finished_at}`);
    });
  });
}
