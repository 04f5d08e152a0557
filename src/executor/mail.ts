/**
 * Outbound email over SMTP (nodemailer), for the email notification channel. One connection per
 * message: implicit TLS, required STARTTLS, or plain; AUTH when a username is set; the server's
 * certificate validated unless told otherwise. Failures are {@link MailError}s that carry the
 * server's own words and never the password. No database, no domain types.
 */
import { rootCertificates } from 'node:tls';

import { createTransport, type NodemailerError, type SMTPTransportOptions } from 'nodemailer';

/** Where and how to hand mail over. */
export interface SmtpOptions {
  host: string;
  port: number;
  /** STARTTLS (required when true), or implicit TLS when port is 465 (see `implicitTls`). */
  useTls: boolean;
  /**
   * Implicit TLS (TLS from the first byte, "SMTPS") instead of STARTTLS. Overrides the port rule:
   * true forces it on any port — even with `useTls` false, so a TLS setting never ends up plain —
   * and false forces STARTTLS on port 465.
   * @defaultValue `useTls && port === 465`
   */
  implicitTls?: boolean;
  /** AUTH (PLAIN/LOGIN, whichever the server offers) only when set. */
  username?: string;
  password?: string;
  fromEmail: string;
  /** Display name of the sender (`"OpsConductor" <ops@example.com>`). */
  fromName?: string;
  /** Validate the server certificate (chain and host name). @defaultValue true */
  tlsVerify?: boolean;
  /** Extra trusted CA PEM, added to Node's CAs (tests; admins use NODE_EXTRA_CA_CERTS). */
  ca?: string;
  /** Limit on connecting, on the greeting, and on any silence of the server afterwards. @defaultValue 15000 */
  timeoutMs?: number;
}

/** One message; `to` may list several recipients. */
export interface MailMessage {
  to: string | string[];
  subject: string;
  text: string;
  /** HTML alternative to `text`. */
  html?: string;
}

/** What a {@link MailError} was about. `rejected` is the server refusing the envelope or the message. */
export const MAIL_ERROR_KINDS = ['auth_failed', 'connection', 'tls', 'rejected', 'timeout'] as const;
/** What a {@link MailError} was about. */
export type MailErrorKind = (typeof MAIL_ERROR_KINDS)[number];

/** The message was not handed over. The message text includes the server's reply, if there was one, and never the password. */
export class MailError extends Error {
  override name = 'MailError';
  constructor(
    message: string,
    readonly kind: MailErrorKind,
    /** The SMTP reply that ended it (`535 5.7.8 …`), when the server gave one. */
    readonly serverResponse?: string,
    /** Its code: 4xx is temporary (worth a retry), 5xx permanent. */
    readonly responseCode?: number,
  ) {
    super(message);
  }
}

const DEFAULT_TIMEOUT_MS = 15_000;

/** How the connection is secured. */
function tlsMode(smtp: SmtpOptions): 'implicit' | 'starttls' | 'plain' {
  if (smtp.implicitTls === true) {
    return 'implicit';
  }
  if (!smtp.useTls) {
    return 'plain';
  }
  return (smtp.implicitTls ?? smtp.port === 465) ? 'implicit' : 'starttls';
}

/** nodemailer's transport options for `smtp`. */
function transportOptions(smtp: SmtpOptions): SMTPTransportOptions {
  const mode = tlsMode(smtp);
  const timeout = smtp.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    host: smtp.host,
    port: smtp.port,
    secure: mode === 'implicit',
    requireTLS: mode === 'starttls',
    // Plain means plain: no opportunistic STARTTLS whose failed upgrade would fail the send.
    ignoreTLS: mode === 'plain',
    auth: smtp.username === undefined ? undefined : { user: smtp.username, pass: smtp.password ?? '' },
    // `ca` replaces Node's CA list (NODE_EXTRA_CA_CERTS included), so keep the bundled CAs and add the extra one.
    tls: { rejectUnauthorized: smtp.tlsVerify ?? true, ...(smtp.ca ? { ca: [...rootCertificates, smtp.ca] } : {}) },
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    // Messages are text we compose; nothing in them may make nodemailer read a file or fetch a URL.
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

/** Certificate checks that failed, as Node reports them (OpenSSL verify codes, ERR_TLS_CERT_ALTNAME_INVALID). */
const CERT_CODE = /CERT|SELF_SIGNED|^UNABLE_TO_/;
/** Any TLS failure Node reports under its own code: a certificate, or the handshake (ERR_SSL_*, ERR_TLS_*). */
const isTlsCode = (code: string) => CERT_CODE.test(code) || /^ERR_(SSL|TLS)_/.test(code);

/** Replies that mean "log in first" or "not with these credentials", whatever command got them. */
const AUTH_REPLIES = new Set([530, 534, 535, 538]);

function classify(err: NodemailerError): MailErrorKind {
  if (err.responseCode !== undefined && AUTH_REPLIES.has(err.responseCode)) {
    // "530 Must issue a STARTTLS command first" is about TLS, not about the credentials.
    return /STARTTLS/i.test(err.response ?? '') ? 'tls' : 'auth_failed';
  }
  switch (err.code) {
    case 'EAUTH':
    case 'ENOAUTH':
      return 'auth_failed';
    case 'ETLS':
    case 'EREQUIRETLS':
      return 'tls';
    case 'ETIMEDOUT':
      return 'timeout';
    case 'EENVELOPE':
    case 'EMESSAGE':
      return 'rejected';
    default:
      return isTlsCode(err.originalCode ?? '') ? 'tls' : 'connection';
  }
}

const HEADLINES: Record<MailErrorKind, string> = {
  auth_failed: 'SMTP authentication failed',
  connection: 'SMTP connection failed',
  tls: 'SMTP TLS failed',
  rejected: 'SMTP server rejected the message',
  timeout: 'SMTP server did not answer in time',
};

/** Matches `secret` where no letter or digit touches it on either side. */
function standalone(secret: string): RegExp {
  const escaped = secret.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`(?<![\\p{L}\\p{N}])${escaped}(?![\\p{L}\\p{N}])`, 'gu');
}

/**
 * `text` without the password, as typed or as AUTH PLAIN/LOGIN encode it (a server may echo what it
 * got). Only standalone occurrences go, so that a short password does not blank out parts of words.
 */
function redact(text: string, smtp: SmtpOptions): string {
  if (!smtp.password) {
    return text;
  }
  const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
  const secrets = [b64(`\0${smtp.username ?? ''}\0${smtp.password}`), b64(smtp.password), smtp.password];
  return secrets.reduce((out, secret) => out.replace(standalone(secret), '***'), text);
}

/** What went wrong, in the words of the server or of Node's TLS, with a hint where one helps. */
function explain(err: NodemailerError & { reason?: string }, kind: MailErrorKind, smtp: SmtpOptions): string {
  if (kind === 'tls' && err.command === 'STARTTLS' && err.responseCode) {
    return `the server does not offer STARTTLS (use implicit TLS, or turn TLS off): ${err.message}`;
  }
  if (kind === 'tls' && err.originalCode) {
    // OpenSSL errors carry a short `reason`; their message is a raw error line.
    const text = `${err.reason ?? err.message} (${err.originalCode})`;
    return CERT_CODE.test(err.originalCode) ? `${text}; trust the server's CA (NODE_EXTRA_CA_CERTS) or turn certificate validation off` : `handshake failed: ${text}`;
  }
  if (kind === 'timeout') {
    return `no answer within ${smtp.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms (${err.message})`;
  }
  return err.message;
}

/** `e` (what nodemailer threw) as a {@link MailError}. */
function toMailError(e: unknown, smtp: SmtpOptions): MailError {
  const err = (e instanceof Error ? e : new Error(String(e))) as NodemailerError;
  const kind = classify(err);
  const response = err.response === undefined ? undefined : redact(err.response, smtp);
  return new MailError(`${HEADLINES[kind]}: ${redact(explain(err, kind, smtp), smtp)}`, kind, response, err.responseCode);
}

/** Hands `message` to the SMTP server; throws {@link MailError} when it was not accepted. */
export async function sendMail(smtp: SmtpOptions, message: MailMessage): Promise<{ messageId: string; response: string }> {
  const transport = createTransport(transportOptions(smtp));
  try {
    const info = await transport.sendMail({
      from: smtp.fromName ? { name: smtp.fromName, address: smtp.fromEmail } : smtp.fromEmail,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
    });
    return { messageId: info.messageId, response: info.response };
  } catch (e) {
    throw toMailError(e, smtp);
  } finally {
    transport.close();
  }
}
