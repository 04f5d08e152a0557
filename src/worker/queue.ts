/**
 * The background-work queue: pg-boss on the application database (PostgreSQL or PGlite), so any
 * number of workers on any number of machines share it with no other server.
 */
import PgBoss from 'pg-boss';

import type { Database } from '../db/database.ts';
import type { Logger } from '../logging.ts';

/** The queue handle (pg-boss). */
export type Queue = PgBoss;

/** Starts pg-boss over `database` (creating its schema on first start). */
export async function startQueue(database: Database, logger: Logger): Promise<Queue> {
  const boss = new PgBoss({
    db: { executeSql: (text: string, values?: unknown[]) => database.executeSql(text, values) },
    schema: 'pgboss',
  });
  boss.on('error', (err) => logger.error({ err }, 'queue error'));
  await boss.start();
  return boss;
}
