/**
 * Lock discipline of the run-target writes on PostgreSQL: lease renewal and the reaper skip rows a
 * worker is finishing right now instead of waiting on them (waiting on a set of rows in another
 * order than the result writer's batch is how they deadlocked with it).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import pg from 'pg';

import { createTestDatabase, type TestDatabase, usesPostgres } from '../../../test/db.ts';
import { createRunsRepo, type RunsRepo } from './runs.repo.ts';

const WORKER = 'worker-a';

/** Resolves with `promise`, or rejects if it takes longer than `ms` (it was waiting on a lock). */
function promptly<T>(promise: Promise<T>, ms = 3000): Promise<T> {
  return Promise.race([promise, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms).unref())]);
}

if (usesPostgres) {
  describe('run-target row locks (PostgreSQL)', () => {
    let testDb: TestDatabase;
    let repo: RunsRepo;
    let holder: pg.Client;
    let runId: number;
    const now = new Date();

    before(async () => {
      testDb = await createTestDatabase();
      repo = createRunsRepo(testDb.database.db);
      holder = new pg.Client({ connectionString: testDb.url });
      await holder.connect();
      runId = await repo.insertRun(testDb.database.db, {
        jobId: null,
        jobName: 'locks',
        definition: { steps: [{ type: 'command', command: 'true' }], parameters: {}, concurrency: 10, timeout_s: 3600 },
        trigger: 'api',
        requestedBy: null,
        scheduleId: null,
        retryOf: null,
        parameters: {},
        parametersSealed: 'unused',
        targets: [1, 2, 3].map((id) => ({ id, name: `t${id}` })),
        stepNames: ['only'],
      });
      const claimed = await repo.claimTargets(runId, null, 3, WORKER, 30, now);
      assert.equal(claimed.length, 3);
    });
    after(async () => {
      await holder.end();
      await testDb.drop();
    });

    /** Locks target 1's row in another session (as a result batch in flight does) while `fn` runs. */
    async function whileTargetOneIsLocked<T>(fn: () => Promise<T>): Promise<T> {
      await holder.query('begin');
      await holder.query('select 1 from job_run_targets where run_id = $1 and target_id = 1 for update', [runId]);
      try {
        return await fn();
      } finally {
        await holder.query('rollback');
      }
    }

    const leases = async () => {
      const { rows } = await holder.query<{ target_id: number; lease_until: Date }>('select target_id, lease_until from job_run_targets where run_id = $1 order by target_id', [runId]);
      return new Map(rows.map((r) => [r.target_id, r.lease_until.getTime()]));
    };

    test('renewing leases skips a row being finished instead of waiting for it', async () => {
      const before = await leases();
      const later = new Date(now.getTime() + 60_000);
      await whileTargetOneIsLocked(() => promptly(repo.renewLeases(WORKER, 30, later)));
      const renewed = await leases();
      assert.equal(renewed.get(1), before.get(1), 'the locked row keeps its lease');
      assert.equal(renewed.get(2), later.getTime() + 30_000);
      assert.equal(renewed.get(3), later.getTime() + 30_000);
    });

    test('the reaper skips a row being finished: only the others are declared lost', async () => {
      const expiredAt = new Date(now.getTime() + 10 * 60_000);
      const lost = await whileTargetOneIsLocked(() => promptly(repo.expireLeases(expiredAt)));
      assert.deepEqual(lost.map((l) => l.target_id).sort(), [2, 3]);
      const { rows } = await holder.query<{ target_id: number; status: string }>('select target_id, status from job_run_targets where run_id = $1 order by target_id', [runId]);
      assert.deepEqual(
        rows.map((r) => [r.target_id, r.status]),
        [
          [1, 'running'],
          [2, 'failed'],
          [3, 'failed'],
        ],
      );
    });
  });
}
