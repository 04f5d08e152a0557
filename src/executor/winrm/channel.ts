/**
 * The WinRM transport: one TCP connection to the service (NTLM authenticates the connection), with
 * Basic or NTLM authentication and, over plain HTTP, NTLM message encryption. Over HTTPS, TLS
 * protects the messages (NTLM sends plain SOAP after the handshake, as pywinrm does) and the server
 * certificate is checked as `tls` says. Failures are classified as {@link WinrmError}s.
 */
import { Client } from 'undici';

import { tlsConnector, TlsError, type TlsOptions } from '../tls.ts';
import { decryptMessage, ENCRYPTED_CONTENT_TYPE, encryptMessage, isEncrypted } from './encryption.ts';
import { authenticateMessage, negotiateMessage, NtlmError, type NtlmSession, parseChallenge } from './ntlm.ts';

/**
 * How a WinRM exchange failed. `insecure_auth`: refused before connecting, because Basic over
 * plain HTTP would send the password in clear.
 */
export type WinrmFailureKind = 'offline' | 'auth_failed' | 'protocol' | 'tls_error' | 'insecure_auth';

/** A failed exchange, classified. */
export class WinrmError extends Error {
  override name = 'WinrmError';
  constructor(
    readonly kind: WinrmFailureKind,
    message: string,
  ) {
    super(message);
  }
}

/** Where and how to connect. */
export interface WinrmOptions {
  /** http(s)://host:port/wsman */
  url: string;
  username: string;
  password: string;
  /** NTLM domain (also taken from `DOMAIN\\user`). */
  domain?: string;
  auth: 'basic' | 'ntlm';
  /** Longest a Receive waits on the server before answering w:TimedOut. @defaultValue 20 */
  operationTimeoutS?: number;
  /** Over https: how to check the server certificate. @defaultValue validate against the system CAs */
  tls?: TlsOptions;
}

/** Longest we wait for an answer: a Receive may legitimately wait the whole operation timeout on the server. */
export const answerTimeoutMs = (options: WinrmOptions) => (options.operationTimeoutS ?? 20) * 1000 + 15_000;

/** An authenticated connection carrying SOAP messages. */
export interface Channel {
  send(xml: string, signal?: AbortSignal): Promise<string>;
  close(): Promise<void>;
}

const SOAP_TYPE = 'application/soap+xml;charset=UTF-8';

function account(options: WinrmOptions): { user: string; domain: string } {
  const [first, second] = options.username.split('\\');
  return second === undefined ? { user: options.username, domain: options.domain ?? '' } : { user: second, domain: first ?? '' };
}

/** An answer that did not come within {@link answerTimeoutMs} (undici's headers or body timeout). */
const isSilence = (e: unknown) => ['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'].includes(String((e as { code?: unknown }).code));

async function post(client: Client, path: string, headers: Record<string, string>, body: Buffer, signal?: AbortSignal) {
  try {
    const res = await client.request({ path, method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, body, signal });
    return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
  } catch (e) {
    if (signal?.aborted) {
      throw e;
    }
    if (e instanceof TlsError) {
      throw new WinrmError('tls_error', e.message);
    }
    if (isSilence(e)) {
      throw new WinrmError('offline', 'The WinRM service accepted the connection but did not answer in time');
    }
    throw new WinrmError('offline', `Could not reach the WinRM service: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
}

/** NTLM on this connection: NEGOTIATE, the server's CHALLENGE, AUTHENTICATE; returns the session. */
async function ntlmHandshake(client: Client, path: string, options: WinrmOptions, signal?: AbortSignal): Promise<NtlmSession> {
  const negotiate = negotiateMessage();
  const first = await post(client, path, { authorization: `Negotiate ${negotiate.toString('base64')}` }, Buffer.alloc(0), signal);
  const offer = String(first.headers['www-authenticate'] ?? '');
  const token = /(?:Negotiate|NTLM) ([A-Za-z0-9+/=]+)/.exec(offer)?.[1];
  if (first.status !== 401 || !token) {
    throw new WinrmError('auth_failed', `The WinRM service does not offer NTLM (HTTP ${first.status})`);
  }
  const { user, domain } = account(options);
  const { message, session } = authenticateMessage({ user, password: options.password, domain, negotiate, challenge: parseChallenge(Buffer.from(token, 'base64')) });
  const second = await post(client, path, { authorization: `Negotiate ${message.toString('base64')}` }, Buffer.alloc(0), signal);
  if (second.status === 401) {
    throw new WinrmError('auth_failed', 'Authentication failed: the server rejected the credential');
  }
  return session;
}

/**
 * Opens one connection to the service and authenticates it; `signal` aborts the handshake (the
 * rejection is then `signal.reason`). Basic over plain HTTP is refused before anything is sent.
 */
export async function openChannel(options: WinrmOptions, signal?: AbortSignal): Promise<Channel> {
  const url = new URL(options.url);
  if (options.auth === 'basic' && url.protocol === 'http:') {
    throw new WinrmError('insecure_auth', 'Basic authentication over plain HTTP would send the password in clear: use HTTPS (port 5986) or NTLM');
  }
  // Connecting (TCP, then TLS) is bounded by tlsConnector (undici's connector, 10 s per stage); an answer by answerTimeoutMs.
  const answer = answerTimeoutMs(options);
  const client = new Client(url.origin, { pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: answer, bodyTimeout: answer, connect: tlsConnector(options.tls) });
  const path = url.pathname + url.search;
  try {
    const ntlm = options.auth === 'ntlm' ? await ntlmHandshake(client, path, options, signal) : undefined;
    // Over HTTPS the NTLM-authenticated connection carries plain SOAP: TLS already protects it.
    const session = url.protocol === 'http:' ? ntlm : undefined;
    const basic = options.auth === 'basic' ? `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}` : undefined;
    return {
      async send(xml, signal) {
        const plain = Buffer.from(xml, 'utf8');
        const headers: Record<string, string> = session ? { 'content-type': ENCRYPTED_CONTENT_TYPE } : { 'content-type': SOAP_TYPE, ...(basic ? { authorization: basic } : {}) };
        const res = await post(client, path, headers, session ? encryptMessage(session, plain) : plain, signal);
        if (res.status === 401) {
          throw new WinrmError('auth_failed', 'Authentication failed: the server rejected the credential');
        }
        const text = session && isEncrypted(String(res.headers['content-type'] ?? '')) ? decryptMessage(session, res.body).toString('utf8') : res.body.toString('utf8');
        if (res.status !== 200 && !text.includes('Fault')) {
          throw new WinrmError('protocol', `The WinRM service answered HTTP ${res.status}`);
        }
        return text;
      },
      close: () => client.close(),
    };
  } catch (e) {
    await client.destroy();
    throw e instanceof NtlmError ? new WinrmError('protocol', e.message) : e;
  }
}
