/**
 * The background-work queue: pg-boss on the application database (PostgreSQL or PGlite), so any
 * number of workers on any number of machines share it with no other server.
 */
import { createHash } from 'node:crypto';

import { CompiledQuery } from 'kysely';
import PgBoss from 'pg-boss';

import type { Database } from '../db/database.ts';
import type { Queryable } from '../db/schema.ts';
import { retryTransient } from '../db/errors.ts';
import type { Logger } from '../logging.ts';

/** The queue handle (pg-boss). */
export type Queue = PgBoss;

/** Starts pg-boss over `database` (creating its schema on first start). */
export async function startQueue(database: Database, logger: Logger): Promise<Queue> {
  // Processes starting together on a fresh database race to create pg-boss's schema; the loser
  // gets a unique violation on pg_namespace (23505) or "schema exists" (42P06). A failed start
  // leaves the instance unusable, so each attempt is a new one; the next sees the schema there.
  const boss = await retryTransient(
    async () => {
      const attempt = new PgBoss({
        db: { executeSql: (text: string, values?: unknown[]) => database.executeSql(text, values) },
        schema: 'pgboss',
      });
      attempt.on('error', (err) => logger.error({ err }, 'queue error'));
      try {
        return await attempt.start();
      } catch (e) {
        await attempt.stop({ graceful: false, wait: false }).catch(() => {});
        throw e;
      }
    },
    { alsoRetry: ['23505', '42P06'] },
  );
  await createQueues(boss);
  return boss;
}

/** Queue names. */
export const QUEUES = { runTarget: 'run-target', notification: 'notification', discovery: 'discovery' } as const;

/** pg-boss's raw-SQL adapter over a Kysely handle or transaction, so messages commit with the caller's writes. */
export function queueDb(q: Queryable) {
  return { executeSql: async (text: string, values: unknown[]) => ({ rows: (await q.executeQuery(CompiledQuery.raw(text, values))).rows as unknown[] }) };
}

/**
 * The id of a run-target's queue message, derived from the pair: a worker that claims a target
 * without its message (pulling the run's next pending target) can cancel the message by id, so no
 * worker fetches it for nothing later.
 */
export function runTargetMessageId(runId: number, targetId: number): string {
  const hex = createHash('sha256').update(`run-target:${runId}:${targetId}`).digest('hex');
  // RFC 9562 layout: version 8 (custom), variant 10.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${((parseInt(hex[16] as string, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Creates the queues (idempotent). Run-targets are never retried by the queue (a lost worker is `worker_lost`); the message may expire after pg-boss's 24 h maximum, the run-target row stays the truth. */
export async function createQueues(boss: Queue): Promise<void> {
  // Processes starting together on a fresh database race to create the queue's partition;
  // PostgreSQL resolves that as a deadlock (40P01) for one of them. Creation is idempotent: retry.
  await retryTransient(() => boss.createQueue(QUEUES.runTarget, { name: QUEUES.runTarget, retryLimit: 0, expireInSeconds: 23 * 3600 } as never), { alsoRetry: ['23505'] });
  // Notifications: the row is the record; retries are scheduled by the sender, lost messages re-sent by its sweep.
  await retryTransient(() => boss.createQueue(QUEUES.notification, { name: QUEUES.notification, retryLimit: 0, expireInSeconds: 15 * 60 } as never), { alsoRetry: ['23505'] });
  // Discovery scans: a message starts a job once (the job row says whether it may run).
  await retryTransient(() => boss.createQueue(QUEUES.discovery, { name: QUEUES.discovery, retryLimit: 0, expireInSeconds: 23 * 3600 } as never), { alsoRetry: ['23505'] });
}
