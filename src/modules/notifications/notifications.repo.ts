/** Data access for notifications, templates, preferences and the SMTP settings row. */
import { sql } from 'kysely';

import type { Db, NotificationPreferencesRow, NotificationRow, NotificationTemplateRow, Queryable } from '../../db/schema.ts';

/** A notification to insert. */
export interface NotificationWrite {
  channel: string;
  destination: string;
  event: string | null;
  template_id: number | null;
  subject: string;
  body: string;
  payload: Record<string, unknown>;
  secret_credential_id: number | null;
  run_id: number | null;
  dedupe_key: string | null;
  created_by: number | null;
  /** Set when the row starts with a problem already known (its template failed and a fallback was used). */
  last_error?: string | null;
}

/** A template to write. */
export type TemplateWrite = Pick<NotificationTemplateRow, 'channel' | 'event' | 'name' | 'subject' | 'body'>;

const SMTP_KEY = 'smtp';

/** Builds the notifications repo. */
export function createNotificationsRepo(db: Db) {
  return {
    /** Inserts a notification; undefined when its dedupe key exists already. */
    insert: async (q: Queryable, row: NotificationWrite, now: Date): Promise<NotificationRow | undefined> =>
      q
        .insertInto('notifications')
        .values({ ...row, payload: JSON.stringify(row.payload), status: 'queued', next_attempt_at: now, created_at: now })
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .returningAll()
        .executeTakeFirst(),

    find: (id: number) => db.selectFrom('notifications').selectAll().where('id', '=', id).executeTakeFirst(),

    async list(filter: { status?: string; channel?: string; offset: number; limit: number }): Promise<{ rows: NotificationRow[]; total: number }> {
      let query = db.selectFrom('notifications');
      if (filter.status) {
        query = query.where('status', '=', filter.status);
      }
      if (filter.channel) {
        query = query.where('channel', '=', filter.channel);
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('id', 'desc').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    /**
     * Takes a notification for sending: queued ones that are due, and `sending` ones whose sender went quiet for
     * `staleS` (it died between sending and recording: at-least-once). Counts the attempt.
     */
    claim: (id: number, now: Date, staleS: number) =>
      db
        .updateTable('notifications')
        .set((eb) => ({ status: 'sending', attempts: eb('attempts', '+', 1), sending_since: now }))
        .where('id', '=', id)
        .where((eb) =>
          eb.or([
            eb.and([eb('status', '=', 'queued'), eb.or([eb('next_attempt_at', 'is', null), eb('next_attempt_at', '<=', now)])]),
            eb.and([eb('status', '=', 'sending'), eb('sending_since', '<', new Date(now.getTime() - staleS * 1000))]),
          ]),
        )
        .returningAll()
        .executeTakeFirst(),

    /** Marks `id` sent; `note` stays as its last_error (a template that failed before sending), else none. */
    markSent: (id: number, now: Date, note: string | null = null) =>
      db.updateTable('notifications').set({ status: 'sent', sent_at: now, last_error: note, next_attempt_at: null, sending_since: null }).where('id', '=', id).execute(),

    markRetry: (id: number, error: string, at: Date) => db.updateTable('notifications').set({ status: 'queued', last_error: error, next_attempt_at: at, sending_since: null }).where('id', '=', id).execute(),

    markFailed: (id: number, error: string) => db.updateTable('notifications').set({ status: 'failed', last_error: error, next_attempt_at: null, sending_since: null }).where('id', '=', id).execute(),

    /** Ids whose delivery is overdue: queued past their time, or stuck sending past `staleS`. */
    overdue: async (now: Date, graceS: number, staleS: number) =>
      (
        await db
          .selectFrom('notifications')
          .select('id')
          .where((eb) =>
            eb.or([
              eb.and([eb('status', '=', 'queued'), eb('next_attempt_at', '<', new Date(now.getTime() - graceS * 1000))]),
              eb.and([eb('status', '=', 'sending'), eb('sending_since', '<', new Date(now.getTime() - staleS * 1000))]),
            ]),
          )
          .orderBy('id')
          .limit(500)
          .execute()
      ).map((r) => r.id),

    // ---- templates ----
    templates: () => db.selectFrom('notification_templates').selectAll().orderBy('id').execute(),
    template: (id: number) => db.selectFrom('notification_templates').selectAll().where('id', '=', id).executeTakeFirst(),
    builtinTemplate: (channel: string, event: string) =>
      db.selectFrom('notification_templates').selectAll().where('channel', '=', channel).where('event', '=', event).where('builtin', '=', true).executeTakeFirst(),
    insertTemplate: (row: TemplateWrite, now: Date) => db.insertInto('notification_templates').values({ ...row, created_at: now, updated_at: now }).returningAll().executeTakeFirstOrThrow(),
    updateTemplate: (id: number, row: Partial<TemplateWrite>, now: Date) =>
      db.updateTable('notification_templates').set({ ...row, updated_at: now }).where('id', '=', id).returningAll().executeTakeFirst(),
    deleteTemplate: (id: number) => db.deleteFrom('notification_templates').where('id', '=', id).execute(),
    templateNameTaken: async (name: string, exceptId?: number) =>
      (await db
        .selectFrom('notification_templates')
        .select('id')
        .where(sql<boolean>`lower(name) = lower(${name})`)
        .$if(exceptId !== undefined, (qb) => qb.where('id', '!=', exceptId as number))
        .executeTakeFirst()) !== undefined,

    // ---- preferences ----
    preferences: (userId: number): Promise<NotificationPreferencesRow | undefined> => db.selectFrom('notification_preferences').selectAll().where('user_id', '=', userId).executeTakeFirst(),
    savePreferences: (userId: number, prefs: Pick<NotificationPreferencesRow, 'channels' | 'events' | 'quiet_hours'>, now: Date) =>
      db
        .insertInto('notification_preferences')
        .values({ user_id: userId, channels: JSON.stringify(prefs.channels), events: JSON.stringify(prefs.events), quiet_hours: prefs.quiet_hours ? JSON.stringify(prefs.quiet_hours) : null, updated_at: now })
        .onConflict((oc) =>
          oc.column('user_id').doUpdateSet({ channels: JSON.stringify(prefs.channels), events: JSON.stringify(prefs.events), quiet_hours: prefs.quiet_hours ? JSON.stringify(prefs.quiet_hours) : null, updated_at: now }),
        )
        .execute(),
    userEmail: async (userId: number) => (await db.selectFrom('users').select(['email', 'is_active']).where('id', '=', userId).executeTakeFirst()) ?? undefined,

    // ---- SMTP settings (not secret: the password is a secret setting) ----
    smtpSettings: async () => (await db.selectFrom('settings').select('value').where('key', '=', SMTP_KEY).executeTakeFirst())?.value as Record<string, unknown> | undefined,
    saveSmtpSettings: (value: Record<string, unknown>, now: Date) =>
      db
        .insertInto('settings')
        .values({ key: SMTP_KEY, value: JSON.stringify(value), updated_at: now })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: JSON.stringify(value), updated_at: now }))
        .execute(),

    /** Runs of jobs started since `since` (whatever became of them), oldest first. */
    startedSince: (since: Date, limit: number) =>
      db.selectFrom('job_runs').select(['id']).where('started_at', '>=', since).where('job_id', 'is not', null).orderBy('started_at').limit(limit).execute(),

    /** Runs of jobs that finished since `since` (for re-deriving their events), oldest first. */
    finishedSince: (since: Date, limit: number) =>
      db
        .selectFrom('job_runs')
        .select(['id', 'status'])
        .where('finished_at', '>=', since)
        .where('job_id', 'is not', null)
        .where('status', 'in', ['completed', 'failed', 'timed_out', 'canceled'])
        .orderBy('finished_at')
        .limit(limit)
        .execute(),

    /** A job's name, for POST /notifications naming `payload.job_id`. */
    jobName: async (jobId: number) => (await db.selectFrom('jobs').select(['id', 'name']).where('id', '=', jobId).executeTakeFirst()) ?? undefined,

    /** The run and its job's notify settings and creator, for a job event. */
    runForEvent: (runId: number) =>
      db
        .selectFrom('job_runs as r')
        .leftJoin('jobs as j', 'j.id', 'r.job_id')
        .select(['r.id', 'r.job_id', 'r.job_name', 'r.status', 'r.trigger', 'r.requested_by', 'r.parameters', 'r.summary', 'r.queued_at', 'r.started_at', 'r.finished_at', 'j.notify', 'j.created_by'])
        .where('r.id', '=', runId)
        .executeTakeFirst(),
  };
}

/** The notifications repo. */
export type NotificationsRepo = ReturnType<typeof createNotificationsRepo>;
