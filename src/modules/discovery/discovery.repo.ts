/** Data access for discovery jobs and the hosts they found. */
import { CompiledQuery, sql } from 'kysely';

import type { Db, DiscoveredHostRow, DiscoveryJobRow, Queryable } from '../../db/schema.ts';

/** Channel telling workers a discovery job was canceled (payload: job id). */
export const DISCOVERY_CANCEL_CHANNEL = 'oc_discovery_cancel';

/** A found host to record. */
export interface FoundHost {
  host: string;
  hostname: string | null;
  os: string;
  osHint: string | null;
  services: string[];
  ports: Array<{ port: number; service: string; banner: string | null }>;
}

/** Builds the discovery repo. */
export function createDiscoveryRepo(db: Db) {
  const withCount = (q: Queryable) =>
    q
      .selectFrom('discovery_jobs as j')
      .selectAll('j')
      .select((eb) => eb.selectFrom('discovered_hosts as h').select((e) => e.fn.countAll<string>().as('n')).whereRef('h.job_id', '=', 'j.id').as('discovered'));

  return {
    insert: (row: { name: string; network_range: string; ports: number[]; scanner: string; created_by: number | null }, now: Date) =>
      db.insertInto('discovery_jobs').values({ ...row, created_at: now }).returningAll().executeTakeFirstOrThrow(),

    find: async (id: number) => withCount(db).where('j.id', '=', id).executeTakeFirst(),
    list: async (offset: number, limit: number) => {
      const [rows, count] = await Promise.all([
        withCount(db).orderBy('j.id', 'desc').offset(offset).limit(limit).execute(),
        db.selectFrom('discovery_jobs').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },
    remove: (id: number) => db.deleteFrom('discovery_jobs').where('id', '=', id).execute(),

    /** Takes a queued job for running; undefined when it is not queued (started elsewhere, canceled). */
    claim: (id: number, now: Date) =>
      db.updateTable('discovery_jobs').set({ status: 'running', started_at: now, heartbeat_at: now, progress: 0 }).where('id', '=', id).where('status', '=', 'queued').where('cancel_requested', '=', false).returningAll().executeTakeFirst(),
    /** Renews the heartbeat of the jobs this worker is scanning. */
    beat: (ids: number[], now: Date) => (ids.length === 0 ? Promise.resolve() : db.updateTable('discovery_jobs').set({ heartbeat_at: now }).where('id', 'in', ids).where('status', '=', 'running').execute().then(() => undefined)),
    /** Fails running jobs whose worker went quiet for `staleS` (it died); returns their ids. */
    reapLost: async (now: Date, staleS: number) =>
      (
        await db
          .updateTable('discovery_jobs')
          .set({ status: 'failed', error: 'worker_lost: the worker scanning this job stopped; create a new job to scan again', finished_at: now })
          .where('status', '=', 'running')
          .where('heartbeat_at', '<', new Date(now.getTime() - staleS * 1000))
          .returning('id')
          .execute()
      ).map((r) => r.id),
    progress: (id: number, progress: number) => db.updateTable('discovery_jobs').set({ progress }).where('id', '=', id).where('status', '=', 'running').execute(),
    /** Ends a running job (one already failed as worker_lost stays failed). */
    finish: (id: number, set: { status: string; summary: Record<string, unknown>; error?: string | null; now: Date }) =>
      db
        .updateTable('discovery_jobs')
        .set({ status: set.status, summary: JSON.stringify(set.summary), error: set.error ?? null, finished_at: set.now, ...(set.status === 'completed' ? { progress: 100 } : {}) })
        .where('id', '=', id)
        .where('status', '=', 'running')
        .execute(),
    /** Puts a running job its worker is leaving (shutdown) back in the queue, without what it found so far; false when it is no longer running or a cancel was asked. */
    requeue: (id: number) =>
      db.transaction().execute(async (tx) => {
        const back = await tx
          .updateTable('discovery_jobs')
          .set({ status: 'queued', started_at: null, heartbeat_at: null, progress: 0 })
          .where('id', '=', id)
          .where('status', '=', 'running')
          .where('cancel_requested', '=', false)
          .executeTakeFirst();
        if (Number(back.numUpdatedRows) !== 1) {
          return false;
        }
        await tx.deleteFrom('discovered_hosts').where('job_id', '=', id).execute();
        return true;
      }),

    /** Asks for a stop: a queued job is canceled now (true), a running one is told through NOTIFY. */
    async requestCancel(id: number, now: Date): Promise<'canceled' | 'stopping' | 'finished'> {
      const queued = await db.updateTable('discovery_jobs').set({ status: 'canceled', cancel_requested: true, finished_at: now }).where('id', '=', id).where('status', '=', 'queued').executeTakeFirst();
      if (Number(queued.numUpdatedRows) === 1) {
        return 'canceled';
      }
      const running = await db.updateTable('discovery_jobs').set({ cancel_requested: true }).where('id', '=', id).where('status', '=', 'running').executeTakeFirst();
      if (Number(running.numUpdatedRows) === 1) {
        await db.executeQuery(CompiledQuery.raw(`select pg_notify('${DISCOVERY_CANCEL_CHANNEL}', $1)`, [String(id)]));
        return 'stopping';
      }
      return 'finished';
    },
    cancelRequested: async (id: number) => (await db.selectFrom('discovery_jobs').select('cancel_requested').where('id', '=', id).executeTakeFirst())?.cancel_requested ?? true,

    saveHosts: async (jobId: number, hosts: FoundHost[]) => {
      if (hosts.length === 0) {
        return;
      }
      await db
        .insertInto('discovered_hosts')
        .values(hosts.map((h) => ({ job_id: jobId, host: h.host, hostname: h.hostname, os: h.os, os_hint: h.osHint, services: JSON.stringify(h.services), ports: JSON.stringify(h.ports) })))
        .onConflict((oc) => oc.columns(['job_id', 'host']).doUpdateSet((eb) => ({ services: eb.ref('excluded.services'), ports: eb.ref('excluded.ports'), os: eb.ref('excluded.os'), os_hint: eb.ref('excluded.os_hint') })))
        .execute();
    },
    hosts: (jobId: number) => db.selectFrom('discovered_hosts').selectAll().where('job_id', '=', jobId).orderBy('id').execute(),
    hostsByIds: (jobId: number, ids: number[]): Promise<DiscoveredHostRow[]> =>
      ids.length === 0 ? Promise.resolve([]) : db.selectFrom('discovered_hosts').selectAll().where('job_id', '=', jobId).where('id', 'in', ids).orderBy('id').execute(),
    markHost: (id: number, set: { import_status: 'imported' | 'skipped'; target_id: number | null }) => db.updateTable('discovered_hosts').set(set).where('id', '=', id).execute(),

    /** Existing targets by host (address or name, case-insensitive). */
    async targetsByHost(hosts: string[]): Promise<Map<string, number>> {
      if (hosts.length === 0) {
        return new Map();
      }
      const rows = await db
        .selectFrom('targets')
        .select(['id', 'host'])
        .where(sql<boolean>`lower(host) = any(${hosts.map((h) => h.toLowerCase())}::text[])`)
        .orderBy('id')
        .execute();
      const out = new Map<string, number>();
      for (const r of rows) {
        if (!out.has(r.host.toLowerCase())) {
          out.set(r.host.toLowerCase(), r.id);
        }
      }
      return out;
    },
    targetNames: async (prefix: string) =>
      new Set((await db.selectFrom('targets').select('name').where(sql<boolean>`lower(name) like ${`${prefix.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`}`).execute()).map((r) => r.name.toLowerCase())),
  };
}

/** The discovery repo. */
export type DiscoveryRepo = ReturnType<typeof createDiscoveryRepo>;
/** A job row with its count of discovered hosts. */
export type DiscoveryJobWithCount = DiscoveryJobRow & { discovered: string | number | null };
