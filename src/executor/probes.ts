/**
 * Reachability probes for non-SSH targets. WinRM without a WinRM credential (with one, the target
 * test is an authenticated Identify): a TCP connect and an unauthenticated POST to /wsman whose
 * 401 must offer the scheme (nothing is sent). HTTP: a GET of the base URL, authenticated when the target has a credential.
 */
import { Agent, request } from 'undici';

/** Outcome of a probe, before it is mapped onto a target status. */
export interface ProbeResult {
  reachable: boolean;
  /** The server refused the credential (HTTP 401/403). */
  authRejected?: boolean;
  message: string;
  details: Record<string, unknown>;
}

const TIMEOUT_MS = 10_000;

/** TLS is verified for HTTP targets but not for the unauthenticated WinRM probe (self-signed certs are the norm there). */
const insecureAgent = new Agent({ connect: { rejectUnauthorized: false } });

function baseUrl(host: string, port: number, tls: boolean): string {
  const h = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return `${tls ? 'https' : 'http'}://${h}:${port}`;
}

function unreachable(e: unknown): ProbeResult {
  const err = e as { code?: string; cause?: { code?: string; message?: string }; message?: string };
  const code = err.code ?? err.cause?.code;
  return { reachable: false, message: `Could not connect: ${code ?? err.cause?.message ?? err.message ?? 'unknown error'}`, details: { error: code ?? 'connect_failed' } };
}

/** Probes a WinRM listener; `scheme` is the credential's (`ntlm` or `basic`). */
export async function probeWinrm(host: string, port: number, tls: boolean, scheme: 'ntlm' | 'basic'): Promise<ProbeResult> {
  try {
    const res = await request(`${baseUrl(host, port, tls)}/wsman`, {
      method: 'POST',
      headers: { 'content-type': 'application/soap+xml;charset=UTF-8' },
      body: '',
      dispatcher: tls ? insecureAgent : undefined,
      headersTimeout: TIMEOUT_MS,
      bodyTimeout: TIMEOUT_MS,
    });
    await res.body.dump();
    const header = res.headers['www-authenticate'];
    const offered = [header].flat().filter((h): h is string => typeof h === 'string').map((h) => h.split(/\s/)[0]?.toLowerCase() ?? '');
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
  }
}

/** GETs the base URL; `authorization` is sent when the target has a credential. */
export async function probeHttp(host: string, port: number, tls: boolean, authorization?: string): Promise<ProbeResult> {
  try {
    const res = await request(`${baseUrl(host, port, tls)}/`, {
      method: 'GET',
      headers: authorization ? { authorization } : {},
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
  }
}
