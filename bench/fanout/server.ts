/**
 * OpsConductor as a real process for the benchmark (`opsconductor start`), a small HTTP client
 * for its API, and the timing of one run: from POST /jobs/{id}/run to the `run_finished` event
 * on GET /job-runs/{id}/events.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** A started server. */
export interface Server {
  url: string;
  pid: number;
  /** Sends a signal to the server process. */
  signal(name: NodeJS.Signals): void;
  /** Last lines the server wrote (for error reports). */
  output(): string;
  stop(): Promise<void>;
}

/** Starts `opsconductor start` on `port` with a fresh data dir; resolves when /health answers. */
export async function startServer(options: {
  port: number;
  dataDir: string;
  databaseUrl?: string;
  concurrency: number;
  /** Node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
  /** Modules preloaded after tsx (e.g. the SQL tracer). */
  imports?: string[];
  env?: Record<string, string>;
}): Promise<Server> {
  // Only the settings below (and the caller's) reach the server, not the shell's OPSCONDUCTOR_*.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('OPSCONDUCTOR_')));
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    OPSCONDUCTOR_DATA_DIR: options.dataDir,
    OPSCONDUCTOR_ADMIN_PASSWORD: ADMIN_PASSWORD,
    OPSCONDUCTOR_LOG_LEVEL: 'warn',
    OPSCONDUCTOR_WORKER_CONCURRENCY: String(options.concurrency),
    ...options.env,
  };
  if (options.databaseUrl) {
    env.OPSCONDUCTOR_DATABASE_URL = options.databaseUrl;
    env.OPSCONDUCTOR_MASTER_KEY = randomBytes(32).toString('base64');
  }
  const child: ChildProcess = spawn(process.execPath, [...(options.nodeArgs ?? []), '--import', 'tsx', ...(options.imports ?? []).flatMap((m) => ['--import', m]), 'src/main/cli.ts', 'start', '--port', String(options.port), '--no-service-ports'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const url = `http://127.0.0.1:${options.port}`;
  const server: Server = {
    url,
    pid: child.pid ?? 0,
    signal: (name) => void child.kill(name),
    output: () => tail,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`the server exited (${child.exitCode}) during start:\n${tail}`);
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (res.ok) {
        break;
      }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await server.stop();
      throw new Error(`the server did not answer /health within 60 s:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return server;
}

export const ADMIN_PASSWORD = 'bench-admin-password-0123';

/** Peak and current resident set size of a process (kB), from /proc/<pid>/status. */
export function memoryOf(pid: number): { peakKb: number; rssKb: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { peakKb: field('VmHWM'), rssKb: field('VmRSS') };
}

/** A logged-in API client. */
export interface Api {
  call<T>(method: string, path: string, body?: unknown): Promise<T>;
  token: string;
}

/** Logs in as admin. */
export async function login(url: string): Promise<Api> {
  const call = async <T>(method: string, path: string, body?: unknown, token?: string): Promise<T> => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    if (!res.ok) {
      throw new Error(`${method} ${path} → ${res.status}: ${text.slice(0, 500)}`);
    }
    return JSON.parse(text) as T;
  };
  const { access_token } = await call<{ access_token: string }>('POST', '/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
  return { token: access_token, call: (method, path, body) => call(method, path, body, access_token) };
}

/** The run detail fields the benchmark reads. */
export interface RunDetail {
  id: number;
  status: string;
  summary: Record<string, number> | null;
  queued_at: string;
  started_at: string | null;
  finished_at: string | null;
  targets: Array<{ target_id: number | null; status: string; error: string | null; started_at: string | null; finished_at: string | null }>;
  steps: Array<{ target_id: number | null; status: string; exit_code: number | null; stdout: string; duration_ms: number | null }>;
}

/** Result of one timed run. */
export interface TimedRun {
  runId: number;
  wallMs: number;
  /** POST /jobs/{id}/run round trip. */
  postMs: number;
  ok: boolean;
  succeeded: number;
  detail: RunDetail;
}

/** Waits for `run_finished` on the run's event stream; resolves with the time it arrived. */
async function awaitRunFinished(url: string, token: string, runId: number, timeoutMs: number): Promise<number> {
  const res = await fetch(`${url}/job-runs/${runId}/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok || !res.body) {
    throw new Error(`GET /job-runs/${runId}/events → ${res.status}`);
  }
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = res.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        throw new Error(`the event stream of run ${runId} ended without run_finished`);
      }
      buffer += decoder.decode(value, { stream: true });
      // Frames end with a blank line; only the event name matters here.
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (/^event: run_finished$/m.test(frame)) {
          return performance.now();
        }
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}

/** Runs the job on `targetIds` and times it (POST → run_finished), then checks every target. */
export async function timedRun(api: Api, url: string, jobId: number, targetIds: number[], timeoutMs: number): Promise<TimedRun> {
  const started = performance.now();
  const queued = await api.call<{ job_run_id: number }>('POST', `/jobs/${jobId}/run`, { target_ids: targetIds });
  const postMs = performance.now() - started;
  // The run id is known only now; the stream replays every event from the start of the run.
  const finished = await awaitRunFinished(url, api.token, queued.job_run_id, timeoutMs);
  const wallMs = finished - started;
  const detail = await api.call<RunDetail>('GET', `/job-runs/${queued.job_run_id}`);
  const succeeded = detail.targets.filter((t) => t.status === 'succeeded').length;
  const ok = detail.status === 'completed' && succeeded === targetIds.length && detail.targets.length === targetIds.length;
  return { runId: queued.job_run_id, wallMs, postMs, ok, succeeded, detail };
}
