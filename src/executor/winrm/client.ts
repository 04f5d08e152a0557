/**
 * WinRM client: a remote shell over WS-Management (Create shell → Command → Receive until done →
 * Signal terminate → Delete shell), on one TCP connection per shell (NTLM authenticates the
 * connection), with Basic or NTLM authentication and, over plain HTTP, NTLM message encryption.
 * Over HTTPS, TLS protects the messages (NTLM sends plain SOAP after the handshake, as pywinrm
 * does) and the server certificate is checked as `tls` says. No database, no domain types.
 */
import { Client } from 'undici';

import { cappedBytes } from '../../shared/output.ts';
import type { ExecOptions } from '../ssh.ts';
import { tlsConnector, TlsError, type TlsOptions } from '../tls.ts';
import { decryptMessage, ENCRYPTED_CONTENT_TYPE, encryptMessage, isEncrypted } from './encryption.ts';
import { authenticateMessage, negotiateMessage, NtlmError, type NtlmSession, parseChallenge } from './ntlm.ts';
import { soapRequest, soapResponse, type SoapTarget, TIMED_OUT_CODE, WsmanFault } from './soap.ts';

/** How a WinRM exchange failed. */
export type WinrmFailureKind = 'offline' | 'auth_failed' | 'protocol' | 'tls_error';

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

/** How to run one command: {@link ExecOptions}, plus input for its stdin. */
export interface WinrmExecOptions extends ExecOptions {
  /** Sent (WS-Management Send) before output is read; stdin is closed after the last chunk. */
  stdin?: AsyncIterable<Buffer>;
}

/** Result of one command. */
export interface WinrmResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  /** Set when we stopped the command: it ran past its timeout, or the caller aborted it. */
  killed?: 'timeout' | 'aborted';
}

interface Channel {
  send(xml: string, signal?: AbortSignal): Promise<string>;
  close(): Promise<void>;
}

const SOAP_TYPE = 'application/soap+xml;charset=UTF-8';

function account(options: WinrmOptions): { user: string; domain: string } {
  const [first, second] = options.username.split('\\');
  return second === undefined ? { user: options.username, domain: options.domain ?? '' } : { user: second, domain: first ?? '' };
}

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
    throw new WinrmError('offline', `Could not reach the WinRM service: ${(e as { code?: string }).code ?? (e as Error).message}`);
  }
}

/** NTLM on this connection: NEGOTIATE, the server's CHALLENGE, AUTHENTICATE; returns the session. */
async function ntlmHandshake(client: Client, path: string, options: WinrmOptions): Promise<NtlmSession> {
  const negotiate = negotiateMessage();
  const first = await post(client, path, { authorization: `Negotiate ${negotiate.toString('base64')}` }, Buffer.alloc(0));
  const offer = String(first.headers['www-authenticate'] ?? '');
  const token = /(?:Negotiate|NTLM) ([A-Za-z0-9+/=]+)/.exec(offer)?.[1];
  if (first.status !== 401 || !token) {
    throw new WinrmError('auth_failed', `The WinRM service does not offer NTLM (HTTP ${first.status})`);
  }
  const { user, domain } = account(options);
  const { message, session } = authenticateMessage({ user, password: options.password, domain, negotiate, challenge: parseChallenge(Buffer.from(token, 'base64')) });
  const second = await post(client, path, { authorization: `Negotiate ${message.toString('base64')}` }, Buffer.alloc(0));
  if (second.status === 401) {
    throw new WinrmError('auth_failed', 'Authentication failed: the server rejected the credential');
  }
  return session;
}

/** Opens one connection to the service and authenticates it. */
async function openChannel(options: WinrmOptions): Promise<Channel> {
  const url = new URL(options.url);
  const client = new Client(url.origin, { pipelining: 1, keepAliveTimeout: 60_000, connect: tlsConnector(options.tls) });
  const path = url.pathname + url.search;
  try {
    const ntlm = options.auth === 'ntlm' ? await ntlmHandshake(client, path, options) : undefined;
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

/** Authenticated Identify: the product version the host announces. */
export async function identify(options: WinrmOptions): Promise<{ productVersion: string }> {
  const channel = await openChannel(options);
  try {
    return { productVersion: soapResponse.productVersion(await channel.send(soapRequest.identify())) };
  } finally {
    await channel.close();
  }
}

/** Sends `input` to the command's stdin, one Send per chunk, the last one marked End; stops early when `stop` aborts. */
async function sendInput(channel: Channel, target: SoapTarget, shellId: string, commandId: string, input: AsyncIterable<Buffer>, stop: AbortSignal): Promise<void> {
  let pending: Buffer | undefined;
  for await (const chunk of input) {
    if (stop.aborted) {
      return;
    }
    if (pending) {
      soapResponse.ok(await channel.send(soapRequest.send(target, shellId, commandId, pending, false), stop));
    }
    pending = chunk;
  }
  if (!stop.aborted) {
    soapResponse.ok(await channel.send(soapRequest.send(target, shellId, commandId, pending ?? Buffer.alloc(0), true), stop));
  }
}

/** Terminates the command and deletes the shell over a fresh connection (the current one may be busy or broken). */
async function removeShell(options: WinrmOptions, target: SoapTarget, shellId: string, commandId: string | undefined): Promise<void> {
  const cleanup = await openChannel(options);
  try {
    if (commandId !== undefined) {
      await cleanup.send(soapRequest.terminate(target, shellId, commandId)).catch(() => {});
    }
    await cleanup.send(soapRequest.deleteShell(target, shellId));
  } finally {
    await cleanup.close();
  }
}

/**
 * Runs `command` with `args` in a new remote shell. A timeout or an abort terminates the command
 * and deletes the shell (over a fresh connection: the current one is busy with the Receive), so
 * nothing keeps running on the host.
 */
export async function runWinrmCommand(options: WinrmOptions, command: string, args: string[], exec: WinrmExecOptions = {}): Promise<WinrmResult> {
  const target: SoapTarget = { url: options.url, operationTimeoutS: options.operationTimeoutS ?? 20 };
  const stop = new AbortController();
  let killed: WinrmResult['killed'];
  const kill = (why: 'timeout' | 'aborted') => {
    killed ??= why;
    stop.abort();
  };
  const timer = exec.timeoutMs ? setTimeout(() => kill('timeout'), exec.timeoutMs) : undefined;
  const onAbort = () => kill('aborted');
  exec.signal?.addEventListener('abort', onAbort, { once: true });
  const max = exec.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const [stdout, stderr] = [cappedBytes(max), cappedBytes(max)];
  let channel: Channel | undefined;
  let shellId: string | undefined;
  let commandId: string | undefined;
  try {
    channel = await openChannel(options);
    shellId = soapResponse.shellId(await channel.send(soapRequest.createShell(target)));
    commandId = soapResponse.commandId(await channel.send(soapRequest.command(target, shellId, command, args)));
    if (exec.signal?.aborted) {
      onAbort();
    }
    if (exec.stdin) {
      await sendInput(channel, target, shellId, commandId, exec.stdin, stop.signal).catch((e: unknown) => {
        if (!stop.signal.aborted) {
          throw e;
        }
      });
    }
    for (;;) {
      if (stop.signal.aborted) {
        break;
      }
      let xml: string;
      try {
        xml = await channel.send(soapRequest.receive(target, shellId, commandId), stop.signal);
      } catch (e) {
        if (stop.signal.aborted) {
          break;
        }
        throw e;
      }
      let received: ReturnType<typeof soapResponse.received>;
      try {
        received = soapResponse.received(xml);
      } catch (e) {
        if (e instanceof WsmanFault && e.code === TIMED_OUT_CODE) {
          continue; // nothing happened within the operation timeout: ask again
        }
        throw e;
      }
      received.stdout.forEach((c) => (stdout.push(c), exec.onStdout?.(c)));
      received.stderr.forEach((c) => (stderr.push(c), exec.onStderr?.(c)));
      if (received.done) {
        await channel.send(soapRequest.terminate(target, shellId, commandId)).catch(() => {});
        await channel.send(soapRequest.deleteShell(target, shellId)).catch(() => {});
        return { stdout: stdout.text(), stderr: stderr.text(), exitCode: received.exitCode };
      }
    }
    await removeShell(options, target, shellId, commandId);
    return { stdout: stdout.text(), stderr: stderr.text(), exitCode: null, killed };
  } catch (e) {
    if (shellId !== undefined) {
      await removeShell(options, target, shellId, commandId).catch(() => {});
    }
    if (e instanceof WsmanFault) {
      throw new WinrmError('protocol', e.message);
    }
    throw e;
  } finally {
    clearTimeout(timer);
    exec.signal?.removeEventListener('abort', onAbort);
    await channel?.close().catch(() => {});
  }
}
