/**
 * Per-user notification preferences: which channels (and where), which job events, and quiet
 * hours in the user's zone, during which only failures are sent. Users without saved preferences
 * get the defaults: email to their account address, for failed runs only.
 */
import type { Channel } from './notifications.channels.ts';
import type { JobEvent } from './notifications.templates.ts';

/** Preferences as stored and returned. */
export interface Preferences {
  channels: Record<Channel, { enabled: boolean; address?: string | null; webhook_url?: string | null; url?: string | null }>;
  events: Record<JobEvent, boolean>;
  quiet_hours: { start: string; end: string; timezone: string } | null;
}

/** What a user gets before saving anything. */
export function defaultPreferences(): Preferences {
  return {
    channels: { email: { enabled: true, address: null }, slack: { enabled: false, webhook_url: null }, teams: { enabled: false, webhook_url: null }, webhook: { enabled: false, url: null } },
    events: { 'job.started': false, 'job.completed': false, 'job.failed': true, 'job.canceled': false },
    quiet_hours: null,
  };
}

/** `saved` over the defaults, then `change` over that (per channel, per event). */
export function mergePreferences(saved: Partial<Preferences> | undefined, change: Partial<Preferences> = {}): Preferences {
  const base = defaultPreferences();
  const channels = { ...base.channels };
  for (const source of [saved?.channels, change.channels]) {
    for (const [name, value] of Object.entries(source ?? {})) {
      channels[name as Channel] = { ...channels[name as Channel], ...value };
    }
  }
  return {
    channels,
    events: { ...base.events, ...saved?.events, ...change.events },
    quiet_hours: change.quiet_hours !== undefined ? change.quiet_hours : (saved?.quiet_hours ?? null),
  };
}

/** Minutes since local midnight of `at` in `timezone`. */
function localMinutes(at: Date, timezone: string): number {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', hour: '2-digit', minute: '2-digit' }).formatToParts(at).map((p) => [p.type, p.value]));
  return Number(parts.hour) * 60 + Number(parts.minute);
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** True when `at` falls in the quiet hours (which may wrap midnight: 22:00–07:00). */
export function inQuietHours(quiet: Preferences['quiet_hours'], at: Date): boolean {
  if (!quiet) {
    return false;
  }
  const now = localMinutes(at, quiet.timezone);
  const [start, end] = [minutes(quiet.start), minutes(quiet.end)];
  return start <= end ? now >= start && now < end : now >= start || now < end;
}

/** Where `prefs` send `event` at `at`: [channel, destination] pairs (the email defaults to `accountEmail`). */
export function destinationsFor(prefs: Preferences, event: JobEvent, at: Date, accountEmail: string): Array<[Channel, string]> {
  if (!prefs.events[event] || (event !== 'job.failed' && inQuietHours(prefs.quiet_hours, at))) {
    return [];
  }
  const out: Array<[Channel, string]> = [];
  const { email, slack, teams, webhook } = prefs.channels;
  if (email.enabled && (email.address || accountEmail)) {
    out.push(['email', email.address || accountEmail]);
  }
  if (slack.enabled && slack.webhook_url) {
    out.push(['slack', slack.webhook_url]);
  }
  if (teams.enabled && teams.webhook_url) {
    out.push(['teams', teams.webhook_url]);
  }
  if (webhook.enabled && webhook.url) {
    out.push(['webhook', webhook.url]);
  }
  return out;
}
