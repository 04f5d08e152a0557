/**
 * Server certificate checks for outbound TLS (WinRM over HTTPS, HTTP target probes): validate
 * against the system CAs (plus NODE_EXTRA_CA_CERTS, which Node reads at start), pin the SHA-256
 * fingerprint of the leaf certificate, or check nothing. An undici connector that does it, and
 * reports a failed check or handshake as {@link TlsError}. No database, no domain types.
 */
import type { TLSSocket } from 'node:tls';

import { buildConnector } from 'undici';

/** How to check the server's certificate. */
export interface TlsOptions {
  /** Validate the chain and the host name. Ignored when `fingerprint` is set. @defaultValue true */
  verify: boolean;
  /** SHA-256 fingerprint of the leaf certificate: accept exactly that one (chain and host name are not checked). */
  fingerprint?: string;
}

/** What the check was, as responses report it. */
export const TLS_MODES = ['verified', 'pinned', 'not_verified'] as const;
/** What the check was, as responses report it. */
export type TlsMode = (typeof TLS_MODES)[number];

/** The certificate check or the TLS handshake failed; the connection was closed before anything was sent. */
export class TlsError extends Error {
  override name = 'TlsError';
  constructor(
    message: string,
    /** SHA-256 fingerprint of the certificate the server presented, when it got that far. */
    readonly presentedFingerprint?: string,
  ) {
    super(message);
  }
}

const COLON_HEX = /^[0-9a-f]{2}(?::[0-9a-f]{2}){31}$/i;
const PLAIN_HEX = /^[0-9a-f]{64}$/i;

/** `AA:BB:…` or 64 hex digits, any case → uppercase `AA:BB:…` (as Node and openssl print it); undefined when malformed. */
export function normalizeFingerprint(text: string): string | undefined {
  const value = text.trim();
  if (!COLON_HEX.test(value) && !PLAIN_HEX.test(value)) {
    return undefined;
  }
  return (value.replaceAll(':', '').toUpperCase().match(/../g) ?? []).join(':');
}

/** The check that `tls` asks for (a pin wins over `verify`). */
export function tlsMode(tls: TlsOptions | undefined): TlsMode {
  return tls?.fingerprint ? 'pinned' : tls?.verify === false ? 'not_verified' : 'verified';
}

const REASONS: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'it is self-signed',
  SELF_SIGNED_CERT_IN_CHAIN: 'its chain ends in a self-signed CA that is not trusted',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'its issuer is not a trusted CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'its issuer is not a trusted CA',
  CERT_HAS_EXPIRED: 'it has expired',
  CERT_NOT_YET_VALID: 'it is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'it is not issued for this host name or address',
};

/** Why `socket`'s certificate is not acceptable under `tls`, or undefined when it is. */
function refusal(socket: TLSSocket, tls: TlsOptions | undefined, pin: string | undefined): TlsError | undefined {
  const presented = socket.getPeerCertificate().fingerprint256;
  if (pin) {
    return presented === pin ? undefined : new TlsError(`The server's certificate (SHA-256 ${presented || 'none'}) does not match the pinned fingerprint ${pin}`, presented);
  }
  if (tls?.verify === false || socket.authorized) {
    return undefined;
  }
  // Node gives the OpenSSL verify code (or ERR_TLS_CERT_ALTNAME_INVALID) as a string here.
  const code = String(socket.authorizationError);
  const reason = REASONS[code] ?? 'it failed validation';
  return new TlsError(`The server's certificate (SHA-256 ${presented}) is not trusted: ${reason} (${code}); trust its CA (NODE_EXTRA_CA_CERTS) or pin this fingerprint`, presented);
}

/**
 * An undici connector (`new Client(origin, { connect })`, `new Agent({ connect })`) that checks
 * certificates as `tls` says. TCP and TLS are set up in two steps, so any failure after the TCP
 * connection stands is a {@link TlsError}, and a refused or unreachable port stays what it was.
 * Node's own rejection is off: the check is made here, on Node's verdict (`authorized`, which
 * covers chain and host name) or the pin, before undici sends a byte.
 */
export function tlsConnector(tls: TlsOptions | undefined): buildConnector.connector {
  const pin = tls?.fingerprint === undefined ? undefined : normalizeFingerprint(tls.fingerprint);
  if (tls?.fingerprint !== undefined && !pin) {
    throw new TypeError('tls.fingerprint must be a SHA-256 fingerprint (AA:BB:… or 64 hex digits)');
  }
  const tcp = buildConnector({});
  // No session cache: a resumed session skips Node's host name check.
  const secure = buildConnector({ rejectUnauthorized: false, maxCachedSessions: 0 });
  return (options, callback) => {
    if (options.protocol !== 'https:') {
      tcp(options, callback);
      return;
    }
    // undici leaves the port empty when it is the scheme's default (an origin drops :443).
    tcp({ ...options, protocol: 'http:', port: options.port || '443' }, (err, socket) => {
      if (err) {
        callback(err, null);
        return;
      }
      secure({ ...options, httpSocket: socket }, (tlsErr, tlsSocket) => {
        if (tlsErr) {
          socket.destroy();
          // OpenSSL errors carry a short `reason` ("wrong version number"); their message is a raw error line.
          const { code, reason } = tlsErr as { code?: string; reason?: string };
          callback(new TlsError(`TLS handshake failed: ${reason ?? tlsErr.message}${code ? ` (${code})` : ''}`), null);
          return;
        }
        const refused = refusal(tlsSocket as TLSSocket, tls, pin);
        if (refused) {
          tlsSocket.destroy();
          callback(refused, null);
          return;
        }
        callback(null, tlsSocket);
      });
    });
  };
}
