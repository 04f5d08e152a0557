/**
 * A real SMTP server for tests (the `smtp-server` package) on 127.0.0.1 and a random port: AUTH
 * PLAIN/LOGIN against fixed users, STARTTLS or implicit TLS with a self-signed certificate
 * (./tls.ts), and a switch that answers the first messages with a temporary 451 so retries can be
 * proven. Every accepted message is parsed with mailparser, so tests assert on what a mail client
 * would show rather than on what our client meant to send.
 */
import type { AddressInfo } from 'node:net';

import { type AddressObject, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerAuthentication, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

import { makeSelfSignedCert, type TestCert } from './tls.ts';

/** How the server offers TLS: STARTTLS after a plain greeting, TLS from the first byte, or not at all. */
export type SmtpTlsMode = 'starttls' | 'implicit' | 'none';

/** What {@link startSmtpServer} runs. */
export interface SmtpServerOptions {
  /** username → password. When given, AUTH is required before MAIL FROM; otherwise no AUTH is offered. */
  users?: Record<string, string>;
  /** @defaultValue 'none' */
  tls?: SmtpTlsMode;
  /** Answer the first this many messages with `451 4.3.0` at the end of DATA. @defaultValue 0 */
  failFirst?: number;
}

/** One accepted message, as mailparser reads it. */
export interface ReceivedMail {
  /** The SMTP envelope (MAIL FROM, RCPT TO). */
  envelope: { from: string; to: string[] };
  /** The From header's first mailbox. */
  from: { name: string; address: string };
  /** The addresses in the To header. */
  to: string[];
  subject: string;
  text: string;
  html: string | undefined;
  /** Parsed headers, keyed by lowercase name. */
  headers: Map<string, unknown>;
  /** The message as it arrived (CRLF line ends, dot-unstuffed). */
  raw: string;
  /** The authenticated user, if any. */
  user: string | undefined;
  /** Whether the session was encrypted (STARTTLS done, or implicit TLS) when the message arrived. */
  secure: boolean;
}

/** A running server. */
export interface TestSmtpServer {
  port: number;
  /** The certificate the server presents (trust it with `ca: cert.cert`); undefined when tls is 'none'. */
  cert: TestCert | undefined;
  /** Accepted messages, in arrival order (rejected ones are not here). */
  readonly messages: ReceivedMail[];
  /** How many AUTH attempts the server answered, successful or not. */
  readonly authAttempts: number;
  /** How many messages the server answered with the `failFirst` 451. */
  readonly rejected: number;
  /** Errors the server reported (client-side TLS aborts show up here). */
  readonly errors: Error[];
  close(): Promise<void>;
}

const TEMPORARY_FAILURE = 'Temporary local problem, try again later';
/** smtp-server prefixes the enhanced status code; the reply reads `535 5.7.8 Authentication credentials invalid`. */
const AUTH_INVALID = 'Authentication credentials invalid';

function smtpError(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

function addresses(field: AddressObject | AddressObject[] | undefined): string[] {
  return [field ?? []].flat().flatMap((group) => group.value.map((mailbox) => mailbox.address ?? ''));
}

async function parseMail(raw: Buffer, session: SMTPServerSession): Promise<ReceivedMail> {
  const parsed = await simpleParser(raw);
  const from = parsed.from?.value[0];
  return {
    envelope: { from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address) },
    from: { name: from?.name ?? '', address: from?.address ?? '' },
    to: addresses(parsed.to),
    subject: parsed.subject ?? '',
    text: parsed.text ?? '',
    html: parsed.html || undefined,
    headers: parsed.headers,
    raw: raw.toString('utf8'),
    user: typeof session.user === 'string' ? session.user : undefined,
    secure: session.secure,
  };
}

async function readAll(stream: SMTPServerDataStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** TLS, AUTH and command settings for `mode` and `users`. */
function serverOptions(mode: SmtpTlsMode, cert: TestCert | undefined, users: Record<string, string> | undefined): SMTPServerOptions {
  return {
    ...(cert ? { key: cert.key, cert: cert.cert } : {}),
    secure: mode === 'implicit',
    disabledCommands: [...(mode === 'none' ? ['STARTTLS'] : []), ...(users ? [] : ['AUTH'])],
    authOptional: !users,
    // Without TLS there is nothing to wait for: let AUTH go over the plain connection.
    allowInsecureAuth: mode === 'none',
    hideENHANCEDSTATUSCODES: false,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 500,
  };
}

/** Starts a server on 127.0.0.1 with a random port. */
export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const mode = options.tls ?? 'none';
  const cert = mode === 'none' ? undefined : makeSelfSignedCert('IP:127.0.0.1');
  const state = { messages: [] as ReceivedMail[], authAttempts: 0, rejected: 0, errors: [] as Error[] };
  const onAuth = (auth: SMTPServerAuthentication, _session: SMTPServerSession, done: (err: Error | null, response?: { user: string }) => void) => {
    state.authAttempts += 1;
    const username = auth.username ?? '';
    const known = options.users && Object.hasOwn(options.users, username) && options.users[username] === auth.password;
    done(known ? null : smtpError(AUTH_INVALID, 535), known ? { user: username } : undefined);
  };
  const onData = (stream: SMTPServerDataStream, session: SMTPServerSession, done: (err?: Error | null) => void) => {
    void readAll(stream)
      .then(async (raw) => {
        if (state.rejected < (options.failFirst ?? 0)) {
          state.rejected += 1;
          throw smtpError(TEMPORARY_FAILURE, 451);
        }
        state.messages.push(await parseMail(raw, session));
      })
      .then(() => done(), (err: unknown) => done(err as Error));
  };
  const server = new SMTPServer({ ...serverOptions(mode, cert, options.users), onAuth, onData });
  server.on('error', (err) => state.errors.push(err));
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.server.address() as AddressInfo).port,
    cert,
    messages: state.messages,
    get authAttempts() {
      return state.authAttempts;
    },
    get rejected() {
      return state.rejected;
    },
    errors: state.errors,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
