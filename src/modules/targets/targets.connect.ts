/**
 * Reaching targets: the one place that opens SSH sessions to a target (pinning its host key on
 * first use and refusing a changed one) and that runs the connection test behind
 * POST /targets/{id}/test. The executor opens its sessions through here too.
 */
import { connectSsh, type PreparedKey, prepareKey, SshConnectError, type SshConnection } from '../../executor/ssh.ts';
import { probeHttp, probeWinrm, type ProbeResult } from '../../executor/probes.ts';
import { type TlsMode, tlsMode, type TlsOptions } from '../../executor/tls.ts';
import { identify, WinrmError, type WinrmOptions } from '../../executor/winrm/client.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import type { CredentialsService, ResolvedCredential } from '../credentials/index.ts';
import type { TargetStatus } from './targets.schemas.ts';
import type { TargetsRepo, TargetWithGroups } from './targets.repo.ts';

/** Result of a connection test, as the API returns it. */
export interface TargetTestResult {
  success: boolean;
  message: string;
  response_time_ms: number;
  status: TargetStatus;
  details: Record<string, unknown>;
}

type Outcome = Omit<TargetTestResult, 'response_time_ms'>;

function httpAuthorization(credential: ResolvedCredential | undefined): string | undefined {
  if (credential?.token) {
    return `Bearer ${credential.token}`;
  }
  if (credential?.username && credential.password) {
    return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
  }
  return undefined;
}

/** How a target over TLS checks the server certificate; undefined without TLS. */
function tlsOf(target: TargetWithGroups): TlsOptions | undefined {
  return target.use_tls ? { verify: target.tls_verify, fingerprint: target.tls_fingerprint ?? undefined } : undefined;
}

/** What responses say about the certificate check: `{ tls: verified | pinned | not_verified }` over TLS, nothing without. */
export function tlsReport(target: TargetWithGroups): { tls?: TlsMode } {
  return target.use_tls ? { tls: tlsMode(tlsOf(target)) } : {};
}

function fromProbe(probe: ProbeResult, target: TargetWithGroups): Outcome {
  const status: TargetStatus = !probe.reachable ? 'offline' : probe.authRejected ? 'auth_failed' : 'online';
  return { success: status === 'online', status, message: probe.message, details: { ...probe.details, ...tlsReport(target) } };
}

/** Longest a WinRM connection test waits for the authenticated Identify. */
const WINRM_TEST_TIMEOUT_MS = 15_000;

/** Builds the connector. */
export function createTargetConnector(deps: { repo: TargetsRepo; credentials: CredentialsService; audit: AuditService; clock: Clock }) {
  const { repo, credentials, audit, clock } = deps;
  // Parsed once per resolved credential: the executor shares one resolved credential across a run's targets.
  const keys = new WeakMap<ResolvedCredential, PreparedKey>();
  const keyOf = (credential: ResolvedCredential): PreparedKey | undefined => {
    if (!credential.private_key) {
      return undefined;
    }
    let key = keys.get(credential);
    if (!key) {
      key = prepareKey(credential.private_key, credential.passphrase);
      keys.set(credential, key);
    }
    return key;
  };

  /**
   * Opens an authenticated SSH session to `target` with `credential`. A first connection pins the
   * host key; a different key later fails with `host_key_mismatch` before credentials are sent.
   */
  async function openSsh(target: TargetWithGroups, credential: ResolvedCredential): Promise<SshConnection> {
    try {
      const connection = await connectSsh({
        host: target.host,
        port: target.port,
        username: credential.username ?? '',
        password: credential.password,
        privateKey: keyOf(credential),
        expectedHostKey: target.host_key_fingerprint,
      });
      if (!target.host_key_fingerprint) {
        await repo.recordCheck(target.id, { status: 'online', at: clock.now(), responseTimeMs: target.response_time_ms ?? 0, hostKey: connection.hostKey });
      }
      return connection;
    } catch (e) {
      if (e instanceof SshConnectError && e.kind === 'host_key_mismatch') {
        await repo.recordCheck(target.id, { status: 'host_key_mismatch', at: clock.now(), responseTimeMs: target.response_time_ms ?? 0 });
      }
      throw e;
    }
  }

  async function testSsh(target: TargetWithGroups, credential: ResolvedCredential): Promise<Outcome> {
    let connection: SshConnection | undefined;
    try {
      connection = await openSsh(target, credential);
      const result = await connection.exec('echo ok', { timeoutMs: 10_000 });
      const ok = result.exitCode === 0 && result.stdout.trim() === 'ok';
      return {
        success: ok,
        status: 'online',
        message: ok ? 'Connection successful' : `Connected, but the test command failed (exit ${result.exitCode ?? result.signal})`,
        details: { host_key_fingerprint: connection.hostKey, exit_code: result.exitCode },
      };
    } catch (e) {
      if (e instanceof SshConnectError) {
        return { success: false, status: e.kind, message: e.message, details: { error: e.kind, presented_host_key: e.presentedHostKey ?? null } };
      }
      throw e;
    } finally {
      connection?.close();
    }
  }

  /** How to reach a winrm target's WS-Management service with `credential`. */
  function winrmOptions(target: TargetWithGroups, credential: ResolvedCredential): WinrmOptions {
    return {
      url: `${target.use_tls ? 'https' : 'http'}://${target.host.includes(':') ? `[${target.host}]` : target.host}:${target.port}/wsman`,
      username: credential.username ?? '',
      password: credential.password ?? '',
      domain: credential.domain ?? undefined,
      auth: credential.auth === 'basic' ? 'basic' : 'ntlm',
      tls: tlsOf(target),
    };
  }

  /**
   * An authenticated Identify: proves the credential and reports the version the host announces.
   * Bounded like the SSH test (its 15 s handshake): a host that accepts and never answers is offline.
   */
  async function testWinrm(target: TargetWithGroups, credential: ResolvedCredential): Promise<Outcome> {
    try {
      const { productVersion } = await identify(winrmOptions(target, credential), { timeoutMs: WINRM_TEST_TIMEOUT_MS });
      const details = { product_version: productVersion, auth_checked: true, ...tlsReport(target) };
      return { success: true, status: 'online', message: `WinRM answered an authenticated Identify (${productVersion})`, details };
    } catch (e) {
      if (e instanceof WinrmError && e.kind === 'insecure_auth') {
        // Nothing was sent: the host's status is unknown, as for a target without a credential.
        return { success: false, status: target.status as TargetStatus, message: e.message, details: { error: e.kind, auth_checked: false } };
      }
      if (e instanceof WinrmError) {
        // tls_error, like offline: nothing usable answered (the credential was never sent).
        const status: TargetStatus = e.kind === 'auth_failed' ? 'auth_failed' : 'offline';
        return { success: false, status, message: e.message, details: { error: e.kind, auth_checked: e.kind === 'auth_failed', ...tlsReport(target) } };
      }
      throw e;
    }
  }

  async function probe(target: TargetWithGroups, credential: ResolvedCredential | undefined): Promise<Outcome> {
    switch (target.protocol) {
      case 'ssh':
        return credential
          ? testSsh(target, credential)
          : { success: false, status: target.status as TargetStatus, message: 'The target has no credential to connect with', details: { error: 'no_credential' } };
      case 'winrm':
        return credential?.type === 'winrm' ? testWinrm(target, credential) : fromProbe(await probeWinrm(target.host, target.port, target.use_tls, 'ntlm', tlsOf(target)), target);
      default:
        return fromProbe(await probeHttp(target.host, target.port, target.use_tls, httpAuthorization(credential), tlsOf(target)), target);
    }
  }

  return {
    openSsh,
    winrmOptions,

    /** Really connects with the target's credential and records the outcome on the target. */
    async test(actor: Actor, target: TargetWithGroups): Promise<TargetTestResult> {
      const credential = target.credential_id ? await credentials.resolve(target.credential_id) : undefined;
      const started = performance.now();
      const outcome = await probe(target, credential);
      const responseTimeMs = Math.round(performance.now() - started);
      await repo.recordCheck(target.id, { status: outcome.status, at: clock.now(), responseTimeMs });
      await audit.record(actor, 'target.test', { type: 'target', id: target.id }, { success: outcome.success, status: outcome.status });
      return { success: outcome.success, message: outcome.message, response_time_ms: responseTimeMs, status: outcome.status, details: outcome.details };
    },
  };
}

/** The target connector. */
export type TargetConnector = ReturnType<typeof createTargetConnector>;
