/**
 * Which scheduled times of a due schedule fire now and which were missed, by its catch-up policy:
 * `none` fires the latest due time only if it is within the grace period (a scheduler that is a
 * little late still fires; one that was down does not), `latest` fires the latest due time
 * whatever its age, `all` fires each due time (at most 100, the newest: after an outage the recent
 * times are the ones that still matter). The missed times just before those fired are recorded (at
 * most 1000); older ones are only counted, so one catch-up writes a bounded number of rows. Pure:
 * no I/O.
 */
import type { CronSchedule } from './cron.ts';

/** Limits of one catch-up. */
export interface CatchupLimits {
  /** Most scheduled times fired (`catchup: all`). */
  fire: number;
  /** Most missed times recorded as `missed` fires. */
  missed: number;
  /** Most unrecorded times counted one by one (each costs a cron step) before "more than" is said. */
  count: number;
}

/** Most scheduled times fired in one catch-up. */
export const CATCHUP_LIMIT = 100;
/** The limits used unless a test passes smaller ones. */
export const DEFAULT_LIMITS: CatchupLimits = { fire: CATCHUP_LIMIT, missed: 1000, count: 10_000 };
/** How late a time may fire under `catchup: none`. */
export const DEFAULT_GRACE_MS = 60_000;

/** Missed times older than those recorded. */
export interface Unrecorded {
  /** How many (at least this many when `atLeast`). */
  count: number;
  atLeast: boolean;
  first: Date;
  last: Date;
}

/** The plan for one due schedule. */
export interface FirePlan {
  /** Times to fire, oldest first: one catch-up batch. */
  fire: Date[];
  /** Missed times to record, oldest first (the newest before `fire`, at most `limits.missed`). */
  missed: Date[];
  /** Missed times older than `missed`, not recorded. */
  unrecorded?: Unrecorded;
  /** The first time after `now`. */
  nextRunAt: Date | null;
}

/** Due times from `from` up to `now`, oldest first, stopping after `max`. */
function dueFrom(cron: CronSchedule, from: Date, now: Date, max: number, before?: Date): Date[] {
  const due = [from];
  while (due.length < max) {
    const [next] = cron.next(due[due.length - 1] as Date, 1);
    if (!next || next > now || (before && next >= before)) {
      break;
    }
    due.push(next);
  }
  return due;
}

/** Plans the fires of a schedule due since `dueSince` (its stored next run) as of `now`. */
export function planFires(cron: CronSchedule, dueSince: Date, catchup: string, now: Date, graceMs = DEFAULT_GRACE_MS, limits: CatchupLimits = DEFAULT_LIMITS): FirePlan {
  const keep = limits.fire + limits.missed;
  const head = dueFrom(cron, dueSince, now, keep + 1);
  const overflow = head.length > keep;
  // Past the limit, the newest due times are counted back from now.
  const newest = overflow ? cron.previous(now, keep) : head;
  const latest = newest[newest.length - 1] as Date;
  const fire = catchup === 'all' ? newest.slice(-limits.fire) : catchup === 'latest' || now.getTime() - latest.getTime() <= graceMs ? [latest] : [];
  const notFired = newest.slice(0, newest.length - fire.length);
  const missed = notFired.slice(-limits.missed);
  const recordedFrom = (missed[0] ?? fire[0]) as Date;
  let unrecorded: Unrecorded | undefined;
  if (overflow || notFired.length > missed.length) {
    const older = dueFrom(cron, dueSince, now, limits.count + 1, recordedFrom);
    const atLeast = older.length > limits.count;
    unrecorded = { count: Math.min(older.length, limits.count), atLeast, first: dueSince, last: cron.previous(new Date(recordedFrom.getTime() - 1), 1)[0] as Date };
  }
  return { fire, missed, unrecorded, nextRunAt: cron.next(now, 1)[0] ?? null };
}

/** What a due time (or the first of a catch-up batch) does given what this schedule still has going. */
export type OverlapStart = 'go' | 'wait' | { outcome: 'skipped_overlap'; error: string };

/**
 * The overlap policy for a time due while this schedule has `active` (its queued or running run)
 * or `waiting` (the oldest fire waiting to start). A catch-up batch is one unit: it is skipped only
 * for what was going before it, and under `queue` it waits in full (it is bounded by CATCHUP_LIMIT).
 * A single time under `queue` waits only if nothing waits yet: one waiting time behind the running
 * run, so a frequent schedule behind a long run does not pile up fires.
 */
export function overlapStart(overlap: string, batch: boolean, active: number | undefined, waiting: Date | undefined): OverlapStart {
  if (active === undefined && waiting === undefined) {
    return 'go';
  }
  const behind = active !== undefined ? `run ${active} of this schedule is still active` : `earlier times of this schedule wait to run (from ${waiting?.toISOString()})`;
  if (overlap === 'skip') {
    return { outcome: 'skipped_overlap', error: `${behind} (overlap skip)` };
  }
  if (waiting !== undefined && !batch) {
    return { outcome: 'skipped_overlap', error: `${behind} and ${waiting.toISOString()} already waits; overlap ${overlap} keeps at most one time waiting` };
  }
  return overlap === 'queue' || waiting !== undefined ? 'wait' : 'go';
}
