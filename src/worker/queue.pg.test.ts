/**
 * Several processes starting at once on a fresh database race to create pg-boss's schema; every
 * one of them must start (one of them used to crash on a unique violation in pg_namespace).
 * PostgreSQL only: the race needs separate connections.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { createTestDatabase, type TestDatabase, usesPostgres } from '../../test/db.ts';
import { type Database, openDatabase } from '../db/database.ts';
import { createLogger } from '../logging.ts';
import { type Queue, startQueue } from './queue.ts';

if (usesPostgres) {
  describe('starting the queue', () => {
    const opened: Database[] = [];
    const queues: Queue[] = [];
    let testDb: TestDatabase | undefined;
    after(async () => {
      await Promise.all(queues.map((q) => q.stop({ graceful: false, wait: true })));
      await Promise.all(opened.map((d) => d.close()));
      await testDb?.drop();
    });

    test('four starters at once on a database without the queue schema all start', async () => {
      testDb = await createTestDatabase();
      for (let i = 0; i < 4; i++) {
        opened.push(await openDatabase({ kind: 'postgres', url: testDb.url as string, poolMax: 2 }));
      }
      const logger = createLogger('silent');
      const started = await Promise.allSettled(opened.map((d) => startQueue(d, logger)));
      for (const s of started) {
        if (s.status === 'fulfilled') {
          queues.push(s.value);
        }
      }
      assert.deepEqual(started.map((s) => (s.status === 'rejected' ? String(s.reason) : 'started')), ['started', 'started', 'started', 'started']);
    });
  });
}
