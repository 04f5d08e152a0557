/**
 * Reachability probes for non-SSH targets. WinRM without a WinRM credential (with one, the target
 * test is an authenticated Identify): a TCP connect and an unauthenticated POST to /wsman whose
 * 401 must offer the scheme (nothing is sent). HTTP: a GET of the base URL, authenticated when the target has a credential.
 * Over TLS both check the server certificate as the target says (src/executor/tls.ts).
 */
import { Agent, request } from 'undici';

import { tlsConnector, TlsError, type TlsOptions } from './tls.ts';

/** Outcome of a probe, before it is mapped onto a target status. */
export interface ProbeResult {
  reachable: boolean;
  /** The server refused the credential (HTTP 401/403). */
  authRejected?: boolean;
  message: string;
  details: Record<string, unknown>;
}

const TIMEOUT_MS = 10_000;

/** A one-request agent that checks the certificate as `tls` says; undefined over plain http. */
const agentFor = (tls: boolean, options: TlsOptions | undefined) => (tls ? new Agent({ connect: tlsConnector(options) }) : undefined);

function baseUrl(host: string, port: number, tls: boolean): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${tls ? 'https' : 'http'}://${h}:${port}`;
}

function unreachable(e: unknown): ProbeResult {
  if (e instanceof TlsError) {
    return { reachable: false, message: e.message, details: { error: 'tls_error' } };
  }
  const err = e as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  const code = err.code ?? err.cause?.code;
  return { reachable: false, message: `Could not connect: ${code ?? err.cause?.message ?? err.message ?? 'unknown error'}`, details: { error: code ?? 'connect_failed' } };
}

/** Probes a WinRM listener; `scheme` is the credential's (`ntlm` or `basic`). */
export async function probeWinrm(host: string, port: number, tls: boolean, scheme: 'ntlm' | 'basic', tlsOptions?: TlsOptions): Promise<ProbeResult> {
  const agent = agentFor(tls, tlsOptions);
  try {
    const res = await request(`${baseUrl(host, port, tls)}/wsman`, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml;charset=UTF-8' },
      body: '',
      dispatcher: agent,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
    await res.body.dump();
    const header = res.headers['www-authenticate'];
    // One header per scheme (as Windows sends them) or several in one, comma-separated (RFC 7235).
    const offered = [header].flat().filter((h): h is string => typeof h === 'string').flatMap((h) => h.split(',')).map((h) => h.trim().split(/\s/)[0]?.toLowerCase() ?? '').filter((s) => /^[a-z0-9-]+$/.test(s));
    const wanted = scheme === 'basic' ? ['basic'] : ['negotiate', 'ntlm'];
    if (res.statusCode !== 401) {
      return { reachable: true, authRejected: true, message: `WinRM answered ${res.statusCode} instead of an authentication challenge`, details: { status_code: res.statusCode, auth_checked: false } };
    }
    if (!offered.some((o) => wanted.includes(o))) {
      return { reachable: true, authRejected: true, message: `WinRM does not offer ${scheme} authentication (offers: ${offered.join(', ') || 'none'})`, details: { offered, auth_checked: false } };
    }
    return { reachable: true, message: `WinRM listener answered and offers ${scheme} authentication`, details: { offered, auth_checked: false } };
  } catch (e) {
    return unreachable(e);
  } finally {
    await agent?.close();
  }
}

/** GETs the base URL; `authorization` is sent when the target has a credential. */
export async function probeHttp(host: string, port: number, tls: boolean, authorization?: string, tlsOptions?: TlsOptions): Promise<ProbeResult> {
  const agent = agentFor(tls, tlsOptions);
  try {
    const res = await request(`${baseUrl(host, port, tls)}/`, {
      method: 'GET',
      headers: authorization ? { authorization } : {},
      dispatcher: agent,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
    await res.body.dump();
    const authRejected = res.statusCode === 401 || res.statusCode === 403;
    return {
      reachable: true,
      authRejected,
      message: authRejected ? `HTTP ${res.statusCode}: the server refused the request` : `HTTP ${res.statusCode}`,
      details: { status_code: res.statusCode },
    };
  } catch (e) {
    return unreachable(e);
  } finally {
    await agent?.close();
  }
}
