/**
 * Cron syntax beyond the API tests: lists, month and weekday names, @monthly and @yearly, Quartz
 * year fields refused with the standard form, and which time zone names are taken (IANA names as
 * tzdata spells them; abbreviations, legacy aliases and a wrong case refused with what to write).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ValidationError } from '../../errors.ts';
import { checkTimezone, parseCron } from './cron.ts';

const next = (cron: string, from: string, count: number, zone = 'UTC') => parseCron(cron, zone).next(new Date(from), count).map((d) => d.toISOString());

/** The message of the ValidationError `fn` throws for `field`. */
function refusal(fn: () => unknown, field: string): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ValidationError, String(e));
    assert.equal(e.field, field);
    return e.message;
  }
  assert.fail('accepted');
}

describe('cron syntax', () => {
  test('lists, ranges and steps together', () => {
    assert.deepEqual(next('5,10-12,*/20 * * * *', '2026-01-01T00:00:00Z', 6), ['00:05', '00:10', '00:11', '00:12', '00:20', '00:40'].map((t) => `2026-01-01T${t}:00.000Z`));
    assert.deepEqual(next('0 9 1,15 * *', '2026-01-01T12:00:00Z', 3), ['2026-01-15T09:00:00.000Z', '2026-02-01T09:00:00.000Z', '2026-02-15T09:00:00.000Z']);
  });

  test('weekday and month names, in either case, in lists and ranges', () => {
    assert.deepEqual(next('0 9 * * MON,WED,FRI', '2026-01-01T00:00:00Z', 3), ['2026-01-02T09:00:00.000Z', '2026-01-05T09:00:00.000Z', '2026-01-07T09:00:00.000Z']);
    assert.deepEqual(next('0 0 1 JAN,JUL *', '2026-01-01T00:00:00Z', 2), ['2026-07-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
    assert.deepEqual(next('0 8 * jan-mar sun', '2026-03-20T00:00:00Z', 2), ['2026-03-22T08:00:00.000Z', '2026-03-29T08:00:00.000Z']);
    assert.match(parseCron('0 9 * * MON,WED,FRI', 'UTC').description, /Monday, Wednesday, and Friday/);
  });

  test('@monthly and @yearly (and @annually), in the schedule’s zone', () => {
    assert.deepEqual(next('@monthly', '2026-01-15T00:00:00Z', 2), ['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z']);
    assert.deepEqual(next('@yearly', '2026-01-15T00:00:00Z', 2), ['2027-01-01T00:00:00.000Z', '2028-01-01T00:00:00.000Z']);
    assert.deepEqual(next('@annually', '2026-01-15T00:00:00Z', 1, 'Europe/London'), ['2027-01-01T00:00:00.000Z']);
    assert.deepEqual(next('@monthly', '2026-06-15T00:00:00Z', 1, 'America/New_York'), ['2026-07-01T04:00:00.000Z']);
  });

  test('a year field, with or without "?", is refused with the standard form to write', () => {
    for (const [cron, write] of [
      ['0 0 12 * * * 2027', '0 12 * * *'],
      ['0 30 9 * * MON 2026-2028', '30 9 * * MON'],
      ['0 12 * * * 2027', '0 12 * * *'],
      ['0 0 12 ? * MON *', '0 12 * * MON'],
    ]) {
      const message = refusal(() => parseCron(cron as string, 'UTC'), 'cron');
      assert.match(message, /a year field is Quartz syntax/, cron);
      assert.ok(message.includes(`e.g. "${write}"`), `${cron}: ${message}`);
    }
    assert.match(refusal(() => parseCron('0 0 12 * * * * *', 'UTC'), 'cron'), /has 8 fields; write 5 fields/);
  });
});

describe('time zones', () => {
  test('IANA names are taken as tzdata spells them, current and older names alike', () => {
    for (const zone of ['UTC', 'Etc/UTC', 'Etc/GMT+5', 'America/New_York', 'America/Argentina/Buenos_Aires', 'Asia/Kolkata', 'Asia/Calcutta', 'Europe/Kyiv']) {
      assert.doesNotThrow(() => checkTimezone(zone), zone);
    }
  });

  test('abbreviations and legacy aliases are refused, naming what they would have meant', () => {
    const est = refusal(() => checkTimezone('EST'), 'timezone');
    assert.match(est, /"EST" is an abbreviation or legacy alias \(here it means America\/Panama\); write the Area\/City name/);
    assert.match(est, /"America\/New_York" \(follows daylight saving\), "Etc\/GMT\+5" for a fixed UTC-05:00/);
    for (const zone of ['CET', 'GMT', 'EST5EDT', 'US/Eastern']) {
      assert.match(refusal(() => checkTimezone(zone), 'timezone'), /abbreviation or legacy alias/, zone);
    }
  });

  test('a wrong case is refused with the spelling to write; an unknown name says it is not a zone', () => {
    assert.match(refusal(() => checkTimezone('utc'), 'timezone'), /case-sensitive; write "utc" as the IANA time zone database spells it \("UTC"\)/);
    assert.match(refusal(() => checkTimezone('america/new_york'), 'timezone'), /\("America\/New_York"\)/);
    assert.match(refusal(() => checkTimezone('Mars/Olympus'), 'timezone'), /"Mars\/Olympus" is not an IANA time zone/);
    assert.match(refusal(() => parseCron('@daily', 'EST'), 'timezone'), /America\/Panama/);
  });
});
