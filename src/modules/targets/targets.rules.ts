/** Pure rules for targets: host syntax, default ports, which credential types fit which protocol. */
import { isIP } from 'node:net';

import { ValidationError } from '../../errors.ts';
import { normalizeFingerprint } from '../../executor/tls.ts';
import type { CredentialType } from '../credentials/index.ts';
import type { Protocol } from './targets.schemas.ts';

const DNS_NAME = /^(?=.{1,253}\.?$)[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;

/** Normalises and checks a host: an IPv4/IPv6 address (brackets dropped) or a DNS name. */
export function checkHost(host: string): string {
  const bracketed = host.startsWith('[') && host.endsWith(']');
  const bare = bracketed ? host.slice(1, -1) : host;
  if (bracketed ? isIP(bare) === 6 : isIP(bare) !== 0) {
    return bare;
  }
  // A name whose last label is all digits is a mistyped address (10.0.0.256), not a DNS name (RFC 3696 §2).
  const lastLabel = bare.replace(/\.$/, '').split('.').pop() ?? '';
  if (!bracketed && DNS_NAME.test(bare) && !/^\d+$/.test(lastLabel)) {
    return bare;
  }
  throw new ValidationError('host must be an IPv4/IPv6 address or a DNS name', 'host');
}

/** The protocol's standard port. */
export function defaultPort(protocol: Protocol, useTls: boolean): number {
  switch (protocol) {
    case 'ssh':
      return 22;
    case 'winrm':
      return useTls ? 5986 : 5985;
    case 'http':
      return useTls ? 443 : 80;
  }
}

const COMPATIBLE: Record<Protocol, CredentialType[]> = {
  ssh: ['ssh', 'password'],
  winrm: ['winrm', 'password'],
  http: ['api_token', 'password', 'certificate'],
};

/** Throws a 400 on `credential_id` when a credential of `type` cannot be used over `protocol`. */
export function checkCredentialFits(protocol: Protocol, type: CredentialType): void {
  if (!COMPATIBLE[protocol].includes(type)) {
    throw new ValidationError(`credential_id: a ${type} credential cannot be used for ${protocol} (use ${COMPATIBLE[protocol].join(' or ')})`, 'credential_id');
  }
}

/**
 * Throws a 400 on `field` when a winrm target would authenticate with Basic over plain HTTP: that
 * sends the password in clear, so the client refuses it (HTTPS with Basic or NTLM, or HTTP with
 * NTLM and message encryption, are the safe combinations).
 */
export function checkWinrmAuth(target: { protocol: Protocol; useTls: boolean; auth: string | null | undefined }, field: 'credential_id' | 'use_tls'): void {
  if (target.protocol === 'winrm' && !target.useTls && target.auth === 'basic') {
    throw new ValidationError(
      `${field}: the credential uses Basic authentication, which over plain HTTP would send the password in clear; set use_tls (HTTPS, port 5986) or use an NTLM credential`,
      field,
    );
  }
}

/** Throws a 400 on `use_tls` for protocols where it means nothing. */
export function checkTls(protocol: Protocol, useTls: boolean): void {
  if (useTls && protocol === 'ssh') {
    throw new ValidationError('use_tls applies to winrm and http targets only', 'use_tls');
  }
}

/** A target's certificate checks, as stored. */
export interface TargetTls {
  tls_verify: boolean;
  tls_fingerprint: string | null;
}

/**
 * Checks a target's certificate options and normalises the fingerprint to uppercase `AA:BB:…`.
 * Non-default values need TLS (`use_tls` on a winrm or http target); a pin and `tls_verify: false`
 * exclude each other. A 400 names `tls_fingerprint`, or `conflictField` for that conflict (the
 * field the caller set).
 */
export function checkTlsOptions(useTls: boolean, tls: TargetTls, conflictField: keyof TargetTls = 'tls_fingerprint'): TargetTls {
  if (tls.tls_fingerprint === null) {
    if (!tls.tls_verify && !useTls) {
      throw new ValidationError('tls_verify applies to winrm and http targets with use_tls only', 'tls_verify');
    }
    return tls;
  }
  const fingerprint = normalizeFingerprint(tls.tls_fingerprint);
  if (!fingerprint) {
    throw new ValidationError('tls_fingerprint must be a SHA-256 certificate fingerprint: 32 bytes as AA:BB:… or 64 hex digits', 'tls_fingerprint');
  }
  if (!useTls) {
    throw new ValidationError('tls_fingerprint applies to winrm and http targets with use_tls only', 'tls_fingerprint');
  }
  if (!tls.tls_verify) {
    throw new ValidationError(`${conflictField}: a pinned tls_fingerprint replaces validation; it cannot be combined with tls_verify: false`, conflictField);
  }
  return { tls_verify: true, tls_fingerprint: fingerprint };
}
