/**
 * The scan itself, as a background task on any worker: takes a queued discovery job, expands its
 * range (resolving host names, every address checked against the allow-list again), finds open
 * ports (built-in TCP connect scanner, or nmap), identifies services by banner, records the hosts.
 * Progress is written as it goes; a cancel (NOTIFY) stops the scan and keeps what was found;
 * a worker shutting down puts its scans back in the queue.
 */
import type { Database } from '../../db/database.ts';
import type { DiscoveryJobRow } from '../../db/schema.ts';
import { identifyHosts } from '../../discovery/identify.ts';
import { nmapOpenPorts } from '../../discovery/nmap.ts';
import { parseNetworkRange, resolveHostnames } from '../../discovery/ranges.ts';
import { findOpenPorts } from '../../discovery/scanner.ts';
import type { Logger } from '../../logging.ts';
import type { Clock } from '../../shared/clock.ts';
import { QUEUES, type Queue } from '../../worker/queue.ts';
import { DISCOVERY_CANCEL_CHANNEL, type DiscoveryRepo } from './discovery.repo.ts';
import type { ScanSettings } from './discovery.service.ts';

const PROGRESS_WRITE_MS = 500;
/** Heartbeat of running scans; a job silent for LOST_S is failed as worker_lost by any worker. */
const HEARTBEAT_MS = 10_000;
export const LOST_S = 60;

type RunnerSettings = ScanSettings & { ratePerSecond: number };

/** The abort reason of scans stopped because their worker is shutting down. */
const SHUTDOWN = 'shutdown';

/** Writes progress at most every PROGRESS_WRITE_MS, as 0–99 (100 is written on completion); a failed write is dropped, the next one catches up. */
function progressWriter(repo: DiscoveryRepo, jobId: number): (value: number) => void {
  let lastWrite = 0;
  return (value) => {
    if (Date.now() - lastWrite >= PROGRESS_WRITE_MS) {
      lastWrite = Date.now();
      void repo.progress(jobId, Math.min(99, Math.max(0, Math.floor(value)))).catch(() => {});
    }
  };
}

/** The job's range as distinct addresses, host names resolved (each address checked against the allow-list again). */
async function expandRange(range: string, settings: RunnerSettings) {
  const parsed = parseNetworkRange(range, settings);
  if (parsed.errors.length > 0) {
    throw new Error(`network_range: ${parsed.errors.map((e) => `${e.part}: ${e.message}`).join('; ')}`);
  }
  const resolved = await resolveHostnames(parsed.hostnames, settings);
  return {
    hostname: new Map(resolved.hosts.map((h) => [h.address, h.hostname])),
    addresses: [...new Set([...parsed.addresses, ...resolved.hosts.map((h) => h.address)])],
    unresolved: resolved.errors,
  };
}

/** Open ports by the job's scanner; only the built-in one reports progress (up to 90, identification takes the rest). */
async function scanPorts(row: Pick<DiscoveryJobRow, 'scanner' | 'ports'>, addresses: string[], settings: RunnerSettings, signal: AbortSignal, progress: (value: number) => void) {
  return row.scanner === 'nmap'
    ? { open: await nmapOpenPorts(addresses, row.ports, { signal, timing: 'T4' }), probed: addresses.length * row.ports.length, canceled: signal.aborted }
    : await findOpenPorts(addresses, row.ports, {
        concurrency: settings.concurrency,
        timeoutMs: settings.timeoutMs,
        ratePerSecond: settings.ratePerSecond,
        signal,
        onProgress: (done, total) => progress((done / Math.max(1, total)) * 90),
      });
}

/** Identifies the services on the open ports by banner and records the hosts, with the name each was resolved from; returns how many. */
async function recordHosts(repo: DiscoveryRepo, jobId: number, open: Array<{ host: string; port: number }>, hostname: Map<string, string>, signal: AbortSignal): Promise<number> {
  const identities = await identifyHosts(
    open.map((o) => ({ host: o.host, port: o.port })),
    { signal },
  );
  await repo.saveHosts(
    jobId,
    identities.map((i) => ({ host: i.host, hostname: hostname.get(i.host) ?? null, os: i.os, osHint: i.osHint, services: i.services, ports: i.ports })),
  );
  return identities.length;
}

/** Scans a claimed job and records what it found; how it ended (canceled keeps the hosts found) and its summary. */
async function scanJob(deps: { repo: DiscoveryRepo; settings: RunnerSettings }, row: DiscoveryJobRow, signal: AbortSignal, started: number) {
  const range = await expandRange(row.network_range, deps.settings);
  const scan = await scanPorts(row, range.addresses, deps.settings, signal, progressWriter(deps.repo, row.id));
  const hostsFound = await recordHosts(deps.repo, row.id, scan.open, range.hostname, signal);
  const canceled = scan.canceled || signal.aborted;
  const summary = {
    scanner: row.scanner,
    addresses: range.addresses.length,
    ports: row.ports.length,
    probed: scan.probed,
    open_ports: scan.open.length,
    hosts_found: hostsFound,
    duration_ms: Date.now() - started,
    ...(range.unresolved.length > 0 ? { unresolved: range.unresolved } : {}),
  };
  return { status: canceled ? 'canceled' : 'completed', summary };
}

/** Runs discovery jobs from the queue until stopped. */
export async function startDiscoveryRunner(deps: { queue: Queue; database: Pick<Database, 'listen'>; repo: DiscoveryRepo; clock: Clock; logger: Logger; settings: ScanSettings & { ratePerSecond: number } }): Promise<() => Promise<void>> {
  const { queue, repo, clock, logger } = deps;
  const running = new Map<number, AbortController>();
  let stopping = false;
  let handling = 0;

  async function run(jobId: number): Promise<void> {
    const row = await repo.claim(jobId, clock.now());
    if (!row) {
      return;
    }
    const controller = new AbortController();
    running.set(jobId, controller);
    const started = Date.now();
    try {
      if (stopping) {
        controller.abort(SHUTDOWN);
      } else if (await repo.cancelRequested(jobId)) {
        controller.abort();
      }
      const { status, summary } = await scanJob(deps, row, controller.signal, started);
      if (!(controller.signal.reason === SHUTDOWN && (await handBack(jobId)))) {
        await repo.finish(jobId, { status, summary, now: clock.now() });
      }
    } catch (e) {
      if (!(controller.signal.reason === SHUTDOWN && (await handBack(jobId)))) {
        logger.warn({ err: e, discovery_job_id: jobId }, 'discovery job failed');
        await repo.finish(jobId, { status: 'failed', summary: { duration_ms: Date.now() - started }, error: (e as Error).message, now: clock.now() });
      }
    } finally {
      running.delete(jobId);
    }
  }

  /** A scan stopped by this worker's shutdown (not by a cancel) goes back to the queue, for whichever worker runs next to scan again. */
  async function handBack(jobId: number): Promise<boolean> {
    if (!(await repo.requeue(jobId))) {
      return false;
    }
    await queue.send(QUEUES.discovery, { jobId });
    logger.info({ discovery_job_id: jobId }, 'discovery job stopped by shutdown: queued again');
    return true;
  }

  const unlisten = await deps.database.listen(DISCOVERY_CANCEL_CHANNEL, (payload) => running.get(Number(payload))?.abort());
  const heartbeat = setInterval(() => {
    const now = clock.now();
    void repo
      .beat([...running.keys()], now)
      .then(() => repo.reapLost(now, LOST_S))
      .then((lost) => lost.length > 0 && logger.warn({ discovery_job_ids: lost }, 'discovery jobs lost with their worker'))
      .catch((err: unknown) => logger.warn({ err }, 'discovery heartbeat failed'));
  }, HEARTBEAT_MS);
  heartbeat.unref();
  const id = await queue.work<{ jobId: number }>(QUEUES.discovery, { batchSize: 1, pollingIntervalSeconds: 1 }, async (jobs) => {
    handling++;
    try {
      for (const job of jobs) {
        await run(job.data.jobId);
      }
    } finally {
      handling--;
    }
  });
  return async () => {
    clearInterval(heartbeat);
    stopping = true;
    await queue.offWork({ id });
    running.forEach((c) => c.abort(SHUTDOWN));
    while (handling > 0) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await unlisten();
  };
}
