/**
 * Cron expressions in a time zone: checked with messages that say what to write instead, next
 * times computed in the zone (croner) and described in words (cronstrue). A local time that does
 * not exist (spring forward) runs at the next valid instant; a fixed time that occurs twice (fall
 * back) runs once; interval expressions (a `*` or step in the minute or hour) run by elapsed time.
 */
import { Cron } from 'croner';
import cronstrue from 'cronstrue';

import { ValidationError } from '../../errors.ts';

const NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};
const SHAPE = '5 fields (minute hour day-of-month month day-of-week), 6 with leading seconds, or @hourly, @daily, @weekly, @monthly, @yearly';

/** A checked expression in its zone. */
export interface CronSchedule {
  /** The five or six fields (a nickname expanded). */
  fields: string;
  timezone: string;
  /** The first `count` times strictly after `after`. */
  next(after: Date, count: number): Date[];
  /** The last `count` times at or before `atOrBefore`, oldest first. */
  previous(atOrBefore: Date, count: number): Date[];
  /** Words for the expression. */
  description: string;
}

/** The areas of IANA Region/City names (tzdata's geographic files, and Etc for fixed offsets). */
const AREAS = new Set(['Africa', 'America', 'Antarctica', 'Arctic', 'Asia', 'Atlantic', 'Australia', 'Europe', 'Indian', 'Pacific', 'Etc']);
const ZONE_EXAMPLES = 'a zone name such as "UTC", "Europe/London" or "America/New_York"';

/**
 * Throws a 400 naming `field` unless `timezone` is an IANA zone name written as tzdata writes it:
 * "UTC" or Area/Location. Intl (and croner through it) also takes abbreviations and legacy names,
 * but they mislead: "EST" is America/Panama (no daylight saving, not New York), "CET" is
 * Europe/Brussels, "US/Eastern" is a backward link; and a wrong case ("utc", "america/new_york")
 * is taken but stored as typed. Those are refused with the name to write.
 */
export function checkTimezone(timezone: string, field = 'timezone'): void {
  let resolved: string;
  try {
    resolved = new Intl.DateTimeFormat('en-US', { timeZone: timezone }).resolvedOptions().timeZone;
  } catch {
    throw new ValidationError(`${field}: "${timezone}" is not an IANA time zone; write ${ZONE_EXAMPLES}`, field);
  }
  const area = timezone.includes('/') ? (timezone.split('/')[0] as string) : '';
  if (timezone === 'UTC' || (AREAS.has(area) && (resolved === timezone || resolved.toLowerCase() !== timezone.toLowerCase()))) {
    return;
  }
  if (resolved.toLowerCase() === timezone.toLowerCase() || [...AREAS].some((a) => a.toLowerCase() === area.toLowerCase())) {
    throw new ValidationError(`${field}: zone names are case-sensitive; write "${timezone}" as the IANA time zone database spells it ("${resolved}")`, field);
  }
  throw new ValidationError(
    `${field}: "${timezone}" is an abbreviation or legacy alias (here it means ${resolved}); write the Area/City name of the place, e.g. "America/New_York" (follows daylight saving), "Etc/GMT+5" for a fixed UTC-05:00, or "UTC"`,
    field,
  );
}

/** Quartz-style expressions we can recognise, with what to write instead; undefined when it is not one. */
function quartzAdvice(parts: string[]): string | undefined {
  const year = parts.length === 7 || (parts.length === 6 && /^\d{4}(?:[-/,]\d{1,4})*$/.test(parts[5] ?? ''));
  if (!parts.includes('?') && !year) {
    return undefined;
  }
  // Quartz: seconds minutes hours day-of-month month day-of-week [year]; six fields ending in a
  // year are the five standard ones plus a year.
  const withSeconds = !(year && parts.length === 6);
  const standard = parts.slice(0, withSeconds ? 6 : 5).map((p) => (p === '?' ? '*' : p));
  const suggestion = withSeconds && standard[0] === '0' ? standard.slice(1).join(' ') : standard.join(' ');
  const what = year ? 'a year field' : '"?"';
  const yearNote = year ? '; a schedule cannot be limited to a year: disable it when it should stop' : '';
  return `cron: ${what} is Quartz syntax, which this scheduler does not take; write standard cron (${SHAPE}), e.g. "${suggestion}" (Quartz numbers weekdays 1-7 from Sunday, standard cron 0-6)${yearNote}`;
}

/** Parses `expression` for `timezone`; throws a 400 naming `field` with what to write instead. */
export function parseCron(expression: string, timezone: string, field = 'cron'): CronSchedule {
  checkTimezone(timezone);
  const trimmed = expression.trim();
  const fields = NICKNAMES[trimmed.toLowerCase()] ?? trimmed;
  if (fields.startsWith('@')) {
    throw new ValidationError(`${field}: "${trimmed}" is not a schedule; write ${SHAPE}`, field);
  }
  const parts = fields.split(/\s+/);
  const quartz = quartzAdvice(parts);
  if (quartz) {
    throw new ValidationError(quartz, field);
  }
  if (parts.length !== 5 && parts.length !== 6) {
    throw new ValidationError(`${field}: "${trimmed}" has ${parts.length} fields; write ${SHAPE}`, field);
  }
  let cron: Cron;
  try {
    cron = new Cron(fields, { timezone, mode: '5-or-6-parts', fixedTimeRule: 'no-wildcard', paused: true });
  } catch (e) {
    throw new ValidationError(`${field}: ${(e as Error).message.replace(/^CronPattern: /, '')}`, field);
  }
  if (cron.nextRun() === null) {
    throw new ValidationError(`${field}: "${trimmed}" never matches a date`, field);
  }
  let description: string;
  try {
    description = cronstrue.toString(fields, { use24HourTimeFormat: true, verbose: true });
  } catch {
    description = fields;
  }
  return {
    fields,
    timezone,
    description,
    next: (after, count) => cron.nextRuns(count, after),
    previous: (atOrBefore, count) => cron.previousRuns(count, new Date(atOrBefore.getTime() + 1)).sort((a, b) => a.getTime() - b.getTime()),
  };
}

/** `date` as local ISO 8601 with the zone's offset, e.g. 2026-03-08T03:00:00-04:00. */
export function localIso(date: Date, timezone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'longOffset' })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  const offset = (parts.timeZoneName ?? 'GMT').replace('GMT', '') || '+00:00';
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${offset}`;
}
