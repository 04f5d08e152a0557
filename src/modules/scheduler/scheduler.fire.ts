/**
 * Which scheduled times of a due schedule fire now and which were missed, by its catch-up policy:
 * `none` fires the latest due time only if it is within the grace period (a scheduler that is a
 * little late still fires; one that was down does not), `latest` fires the latest due time
 * whatever its age, `all` fires each due time (at most 100, the newest). Pure: no I/O.
 */
import type { CronSchedule } from './cron.ts';

/** Most scheduled times fired or recorded as missed in one go. */
export const CATCHUP_LIMIT = 100;
/** How late a time may fire under `catchup: none`. */
export const DEFAULT_GRACE_MS = 60_000;

/** The plan for one due schedule. */
export interface FirePlan {
  fire: Date[];
  /** Missed times to record (at most CATCHUP_LIMIT). */
  missed: Date[];
  /** Missed times beyond those recorded. */
  moreMissed: boolean;
  /** The first time after `now`. */
  nextRunAt: Date | null;
}

/** Plans the fires of a schedule due since `dueSince` (its stored next run) as of `now`. */
export function planFires(cron: CronSchedule, dueSince: Date, catchup: string, now: Date, graceMs = DEFAULT_GRACE_MS): FirePlan {
  const due = [dueSince];
  while (due.length <= CATCHUP_LIMIT) {
    const [next] = cron.next(due[due.length - 1] as Date, 1);
    if (!next || next > now) {
      break;
    }
    due.push(next);
  }
  const overflow = due.length > CATCHUP_LIMIT;
  // Past the limit, the newest due times are counted back from now.
  const newest = overflow ? cron.previous(now, CATCHUP_LIMIT) : due;
  const latest = newest[newest.length - 1] as Date;
  const fire = catchup === 'all' ? newest.slice(-CATCHUP_LIMIT) : catchup === 'latest' || now.getTime() - latest.getTime() <= graceMs ? [latest] : [];
  const fired = new Set(fire.map((d) => d.getTime()));
  const missed = due.filter((d) => !fired.has(d.getTime())).slice(0, CATCHUP_LIMIT);
  return { fire, missed, moreMissed: overflow, nextRunAt: cron.next(now, 1)[0] ?? null };
}
