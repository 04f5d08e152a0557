/**
 * What each channel puts on the wire for a rendered notification, and sending it: email through
 * the SMTP transport; Slack (incoming-webhook JSON: a text fallback and blocks), Teams (a
 * MessageCard, accepted by Teams incoming webhooks) and generic webhooks (JSON, HMAC-SHA256 over
 * the exact bytes sent) over HTTP. A failure throws {@link DeliveryError} with the far side's words.
 */
import { createHmac } from 'node:crypto';

import { HttpCallError, httpCall } from '../../executor/http.ts';
import { MailError, type SmtpOptions, sendMail } from '../../executor/mail.ts';

/** Notification channels. */
export const CHANNELS = ['email', 'slack', 'teams', 'webhook'] as const;
export type Channel = (typeof CHANNELS)[number];

/** A rendered notification ready to send. */
export interface Outgoing {
  channel: Channel;
  destination: string;
  subject: string;
  body: string;
  /** For webhooks: the JSON document sent; for Slack and Teams: extra fields merged into the payload. */
  payload: Record<string, unknown>;
  /** A link to show (the run). */
  url?: string;
  /** Status word for colouring (succeeded/failed…). */
  status?: string;
}

/** A send that did not go through; `permanent` when retrying cannot help (e.g. no SMTP settings). */
export class DeliveryError extends Error {
  override name = 'DeliveryError';
  constructor(
    message: string,
    readonly permanent = false,
  ) {
    super(message);
  }
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The email: the body as text, and as HTML with the link made clickable. */
export function emailContent(n: Outgoing): { subject: string; text: string; html: string } {
  const paragraphs = n.body
    .split(/\n{2,}/)
    .map((p) => `<p>${escapeHtml(p).replace(/\n/g, '<br>')}</p>`)
    .join('\n');
  const link = n.url ? `\n<p><a href="${escapeHtml(n.url)}">${escapeHtml(n.url)}</a></p>` : '';
  return { subject: n.subject, text: n.body, html: `<!doctype html><html><body>\n${paragraphs}${link}\n</body></html>` };
}

/** Slack incoming-webhook message: `text` is the notification fallback, blocks show it. */
export function slackPayload(n: Outgoing): Record<string, unknown> {
  const blocks: Array<Record<string, unknown>> = [];
  if (n.subject) {
    blocks.push({ type: 'header', text: { type: 'plain_text', text: n.subject.slice(0, 150), emoji: true } });
  }
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: n.body.slice(0, 3000) || ' ' } });
  if (n.url) {
    blocks.push({ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open run' }, url: n.url }] });
  }
  return { text: [n.subject, n.body].filter(Boolean).join('\n'), blocks, ...n.payload };
}

const THEME: Record<string, string> = { completed: '2EB67D', succeeded: '2EB67D', failed: 'E01E5A', timed_out: 'E01E5A', canceled: 'ECB22E', running: '36C5F0' };

/** Teams incoming-webhook MessageCard. */
export function teamsPayload(n: Outgoing): Record<string, unknown> {
  return {
    '@type': 'MessageCard',
    '@context': 'https://schema.org/extensions',
    summary: n.subject || n.body.slice(0, 80),
    themeColor: THEME[n.status ?? ''] ?? '6264A7',
    title: n.subject,
    text: n.body.replace(/\n/g, '\n\n'),
    ...(n.url ? { potentialAction: [{ '@type': 'OpenUri', name: 'Open run', targets: [{ os: 'default', uri: n.url }] }] } : {}),
    ...n.payload,
  };
}

/** The exact bytes a webhook receives and the headers that go with them (signed when `secret` is given). */
export function webhookRequest(n: Outgoing, secret: string | undefined): { body: string; headers: Record<string, string> } {
  const body = JSON.stringify(n.payload);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'OpsConductor' };
  if (secret !== undefined) {
    headers['x-opsconductor-signature'] = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
  }
  return { body, headers };
}

/** POSTs `body` as JSON; a non-2xx answer or no answer is a {@link DeliveryError}. */
export async function postJson(url: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }, timeoutMs = 15_000): Promise<void> {
  let reply: Awaited<ReturnType<typeof httpCall>>;
  try {
    reply = await httpCall({ method: 'POST', url, headers, body, timeoutMs, maxBytes: 2048 });
  } catch (e) {
    if (e instanceof HttpCallError) {
      throw new DeliveryError(`${new URL(url).host}: ${e.message}`);
    }
    throw e;
  }
  if (reply.statusCode < 200 || reply.statusCode >= 300) {
    const text = reply.body.trim().slice(0, 300);
    throw new DeliveryError(`${new URL(url).host} answered HTTP ${reply.statusCode}${text ? `: ${text}` : ''}`, reply.statusCode >= 400 && reply.statusCode < 500 && ![408, 429].includes(reply.statusCode));
  }
}

/** Sends `n`; `smtp` is needed for email, `secret` signs webhooks. */
export async function deliver(n: Outgoing, deps: { smtp: () => Promise<SmtpOptions | undefined>; secret: () => Promise<string | undefined> }): Promise<void> {
  switch (n.channel) {
    case 'email': {
      const smtp = await deps.smtp();
      if (!smtp) {
        throw new DeliveryError('SMTP is not configured (POST /api/notification/smtp/settings)');
      }
      try {
        await sendMail(smtp, { to: n.destination, ...emailContent(n) });
      } catch (e) {
        // A message or recipient refused with a 5xx will be refused again; anything else may pass later.
        throw e instanceof MailError ? new DeliveryError(e.message, e.kind === 'rejected' && (e.responseCode ?? 0) >= 500) : e;
      }
      return;
    }
    case 'slack':
      return postJson(n.destination, JSON.stringify(slackPayload(n)));
    case 'teams':
      return postJson(n.destination, JSON.stringify(teamsPayload(n)));
    case 'webhook': {
      const { body, headers } = webhookRequest(n, await deps.secret());
      return postJson(n.destination, body, headers);
    }
  }
}
