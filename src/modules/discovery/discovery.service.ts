/**
 * Discovery jobs: a network range (checked against the allow-list when saved and again when run)
 * and ports, scanned by a worker as a background task; found hosts listed with their services
 * and imported as targets (protocol and port from what was found, never a guessed credential).
 */
import { ConflictError, InvalidStateError, NotFoundError, ServiceCommunicationError, ValidationError } from '../../errors.ts';
import type { DiscoveredHostRow } from '../../db/schema.ts';
import { nmapAvailable } from '../../discovery/nmap.ts';
import { parseNetworkRange, type RangeLimits } from '../../discovery/ranges.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import { QUEUES, type Queue } from '../../worker/queue.ts';
import type { AuditService } from '../audit/index.ts';
import type { CredentialsService } from '../credentials/index.ts';
import type { GroupsService, TargetsService } from '../targets/index.ts';
import type { DiscoveryRepo } from './discovery.repo.ts';

/** Ports scanned when none are given. */
export const DEFAULT_PORTS = [22, 80, 443, 3389, 5985, 5986];

/** How scans run. */
export interface ScanSettings extends RangeLimits {
  concurrency: number;
  timeoutMs: number;
  /** Connection attempts started per second; 0 or absent: unlimited. */
  ratePerSecond?: number;
}

/** "about 3 seconds", "about 2 minutes" … */
export function humanDuration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 90) {
    return `about ${s} second${s === 1 ? '' : 's'}`;
  }
  const m = Math.round(s / 60);
  return m < 90 ? `about ${m} minutes` : `about ${Math.round(m / 60)} hours`;
}

/**
 * Worst-case wall time of a scan: every attempt timing out, `concurrency` at a time, or the rate
 * limit's pace, whichever is longer.
 */
export function estimateMs(addresses: number, ports: number, settings: Pick<ScanSettings, 'concurrency' | 'timeoutMs' | 'ratePerSecond'>): number {
  // At worst every attempt times out, and the scanner tries a timed-out pair twice.
  const attempts = addresses * ports * 2;
  const bySockets = Math.ceil(attempts / settings.concurrency) * settings.timeoutMs;
  const byRate = settings.ratePerSecond ? Math.ceil((attempts / settings.ratePerSecond) * 1000) : 0;
  return Math.max(bySockets, byRate);
}

/** The service a discovered host is managed through, and on which port. */
function managementOf(ports: Array<{ port: number; service: string }>): { protocol: 'ssh' | 'winrm' | 'http'; port: number; useTls: boolean } | undefined {
  const find = (service: string) => ports.find((p) => p.service === service);
  const ssh = find('ssh');
  if (ssh) {
    return { protocol: 'ssh', port: ssh.port, useTls: false };
  }
  const winrm = ports.find((p) => p.service === 'winrm' && p.port === 5986) ?? find('winrm');
  if (winrm) {
    return { protocol: 'winrm', port: winrm.port, useTls: winrm.port === 5986 };
  }
  const http = find('https') ?? find('http');
  return http ? { protocol: 'http', port: http.port, useTls: http.service === 'https' } : undefined;
}

/** What to import: found hosts of one discovery job (`target_ids` are their ids), with an optional credential and group. */
type ImportInput = { discovery_job_id: number; target_ids: number[]; default_credential_id?: number; group_id?: number };

/** One found host's outcome in an import. */
type ImportResult = { id: number; host: string; import_status: 'imported' | 'skipped'; target_id: number | null; reason?: string };

/** Builds the discovery service. */
/** The id of the target a found host already is, if any. */
type ExistingTarget = (host: Pick<DiscoveredHostRow, 'host' | 'hostname'>) => number | undefined;

export function createDiscoveryService(deps: {
  repo: DiscoveryRepo;
  queue: Queue | undefined;
  targets: TargetsService;
  groups: GroupsService;
  credentials: CredentialsService;
  audit: AuditService;
  clock: Clock;
  settings: ScanSettings;
}) {
  const { repo, queue, targets, groups, credentials, audit, clock, settings } = deps;

  async function getRow(id: number) {
    const row = await repo.find(id);
    if (!row) {
      throw new NotFoundError(`Discovery job ${id} not found`);
    }
    return row;
  }

  /** Parses `range`; a 400 naming network_range and every offending part. */
  function checkRange(range: string) {
    const parsed = parseNetworkRange(range, settings);
    if (parsed.errors.length > 0) {
      throw new ValidationError(`network_range: ${parsed.errors.map((e) => `${e.part}: ${e.message}`).join('; ')}`, 'network_range', { details: { errors: parsed.errors } });
    }
    if (parsed.count === 0) {
      throw new ValidationError('network_range: no address or host name given', 'network_range');
    }
    return parsed;
  }

  async function checkScanner(scanner: string | undefined): Promise<'builtin' | 'nmap'> {
    if (scanner === 'nmap' && !(await nmapAvailable())) {
      throw new ValidationError('scanner: nmap is not installed on this server (apt-get install nmap), or use the built-in scanner ("builtin")', 'scanner');
    }
    return scanner === 'nmap' ? 'nmap' : 'builtin';
  }

  /** The found hosts `input.target_ids` names, once the job, credential and group are known to exist (a 400 naming the field otherwise). */
  async function hostsToImport(input: ImportInput) {
    await getRow(input.discovery_job_id).catch(() => {
      throw new ValidationError(`discovery_job_id: discovery job ${input.discovery_job_id} does not exist`, 'discovery_job_id');
    });
    if (input.default_credential_id !== undefined) {
      await credentials.typeOf(input.default_credential_id, 'default_credential_id');
    }
    if (input.group_id !== undefined) {
      await groups.assertExist([input.group_id]).catch(() => {
        throw new ValidationError(`group_id: group ${input.group_id} does not exist`, 'group_id');
      });
    }
    const hosts = await repo.hostsByIds(input.discovery_job_id, input.target_ids);
    const unknown = input.target_ids.filter((id) => !hosts.some((h) => h.id === id));
    if (unknown.length > 0) {
      throw new ValidationError(`target_ids: not results of discovery job ${input.discovery_job_id}: ${unknown.join(', ')}`, 'target_ids');
    }
    return hosts;
  }

  /** A target name from the host's name (or address) that no target has yet: `web1`, else `web1-2`, `web1-3` … */
  async function freeTargetName(host: Pick<DiscoveredHostRow, 'host' | 'hostname'>): Promise<string> {
    const base = (host.hostname ?? host.host).replace(/[^A-Za-z0-9_.:-]/g, '-').slice(0, 90);
    const taken = await repo.targetNames(base);
    let name = base;
    for (let n = 2; taken.has(name.toLowerCase()); n++) {
      name = `${base}-${n}`;
    }
    return name;
  }

  /** The target each found host already is (by address or by the name it was found under), in one query. */
  async function existingTargets(hosts: Array<Pick<DiscoveredHostRow, 'host' | 'hostname'>>): Promise<ExistingTarget> {
    const byHost = await repo.targetsByHost(hosts.flatMap((h) => [h.host, ...(h.hostname ? [h.hostname] : [])]));
    return (h) => byHost.get(h.host.toLowerCase()) ?? (h.hostname ? byHost.get(h.hostname.toLowerCase()) : undefined);
  }

  /** Imports one found host as a target (in the group, with the credential), or skips it: already a target, or nothing to manage it through. */
  async function importHost(actor: Actor, input: ImportInput, host: DiscoveredHostRow, existing: ExistingTarget): Promise<ImportResult> {
    const already = existing(host);
    const how = managementOf(host.ports);
    if (already !== undefined || !how) {
      await repo.markHost(host.id, { import_status: 'skipped', target_id: already ?? null });
      return { id: host.id, host: host.host, import_status: 'skipped', target_id: already ?? null, reason: already !== undefined ? `already a target (${already})` : 'no ssh, winrm or http service found' };
    }
    const name = await freeTargetName(host);
    const target = await targets.create(actor, {
      name,
      host: host.host,
      port: how.port,
      protocol: how.protocol,
      os_type: host.os === 'linux' || host.os === 'windows' ? host.os : 'other',
      ...(how.useTls ? { use_tls: true } : {}),
      ...(input.default_credential_id !== undefined ? { credential_id: input.default_credential_id } : {}),
      description: `Discovered by discovery job ${input.discovery_job_id}`,
    } as never);
    if (input.group_id !== undefined) {
      await groups.addTarget(actor, input.group_id, target.id);
    }
    await repo.markHost(host.id, { import_status: 'imported', target_id: target.id });
    return { id: host.id, host: host.host, import_status: 'imported', target_id: target.id };
  }

  const service = {
    validateRange(range: string) {
      const parsed = parseNetworkRange(range, settings);
      return { valid: parsed.errors.length === 0 && parsed.count > 0, count: parsed.count, errors: parsed.count === 0 && parsed.errors.length === 0 ? [{ part: range, message: 'no address or host name given' }] : parsed.errors };
    },

    get: getRow,
    list: (page: { page: number; limit: number }) => repo.list((page.page - 1) * page.limit, page.limit),
    hosts: async (id: number) => {
      await getRow(id);
      const hosts = await repo.hosts(id);
      const existing = await existingTargets(hosts);
      return hosts.map((h) => ({ ...h, existing_target_id: existing(h) ?? null }));
    },

    async create(actor: Actor, input: { name?: string; network_range: string; scan_ports?: number[]; scanner?: string }) {
      checkRange(input.network_range);
      const scanner = await checkScanner(input.scanner);
      const ports = [...new Set(input.scan_ports && input.scan_ports.length > 0 ? input.scan_ports : DEFAULT_PORTS)].sort((a, b) => a - b);
      const row = await repo.insert({ name: input.name ?? '', network_range: input.network_range, ports, scanner, created_by: actor.id }, clock.now());
      await audit.record(actor, 'discovery.create', { type: 'discovery_job', id: row.id }, { network_range: row.network_range, ports: ports.length, scanner });
      return row;
    },

    /** Queues the scan; returns the estimate. */
    async start(actor: Actor, id: number): Promise<{ message: string; estimatedMs: number }> {
      const row = await getRow(id);
      if (row.status !== 'queued' || row.started_at !== null) {
        throw new InvalidStateError(`Discovery job ${id} is ${row.status}; create a new job to scan again`);
      }
      if (!queue) {
        throw new ServiceCommunicationError('queue', 'The background queue is not running in this process');
      }
      const parsed = checkRange(row.network_range);
      await queue.send(QUEUES.discovery, { jobId: id }, { singletonKey: `discovery:${id}` });
      await audit.record(actor, 'discovery.start', { type: 'discovery_job', id });
      return { message: 'Discovery job started', estimatedMs: estimateMs(parsed.count, row.ports.length, settings) };
    },

    /** An ad hoc scan: a job without a name, started at once; a job that could not start is not left behind. */
    async scanNow(actor: Actor, input: { network_range: string; scan_ports?: number[]; scanner?: string }) {
      const row = await service.create(actor, input);
      try {
        return { id: row.id, ...(await service.start(actor, row.id)) };
      } catch (e) {
        await repo.remove(row.id);
        throw e;
      }
    },

    async cancel(actor: Actor, id: number): Promise<string> {
      await getRow(id);
      const result = await repo.requestCancel(id, clock.now());
      if (result === 'finished') {
        throw new InvalidStateError(`Discovery job ${id} has already finished`);
      }
      await audit.record(actor, 'discovery.cancel', { type: 'discovery_job', id });
      return result === 'canceled' ? 'Discovery job canceled' : 'Discovery job is stopping';
    },

    async remove(actor: Actor, id: number): Promise<void> {
      const row = await getRow(id);
      if (row.status === 'running') {
        throw new ConflictError(`Discovery job ${id} is running; cancel it first`);
      }
      await repo.remove(id);
      await audit.record(actor, 'discovery.delete', { type: 'discovery_job', id });
    },

    /** Creates targets from found hosts; existing hosts and hosts with nothing to manage are skipped. */
    async import(actor: Actor, input: ImportInput) {
      const hosts = await hostsToImport(input);
      const existing = await existingTargets(hosts);
      // One machine found under one name at two addresses (localhost: 127.0.0.1 and ::1) is one target.
      const importedByName = new Map<string, number>();
      const known: ExistingTarget = (h) => existing(h) ?? (h.hostname ? importedByName.get(h.hostname.toLowerCase()) : undefined);
      const results: ImportResult[] = [];
      for (const host of hosts) {
        const result = await importHost(actor, input, host, known);
        if (result.import_status === 'imported' && host.hostname && result.target_id !== null) {
          importedByName.set(host.hostname.toLowerCase(), result.target_id);
        }
        results.push(result);
      }
      const imported = results.filter((r) => r.import_status === 'imported').length;
      await audit.record(actor, 'discovery.import', { type: 'discovery_job', id: input.discovery_job_id }, { imported, skipped: results.length - imported });
      return { imported, skipped: results.length - imported, message: `Imported ${imported} target(s), skipped ${results.length - imported}`, targets: results };
    },
  };
  return service;
}

/** The discovery service. */
export type DiscoveryService = ReturnType<typeof createDiscoveryService>;
