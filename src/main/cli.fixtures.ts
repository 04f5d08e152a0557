/**
 * Shared by the end-to-end CLI test files (cli.*.test.ts): start the real `opsconductor` CLI
 * (`node --import tsx src/main/cli.ts …`) as a child process, wait for it, talk to it over TCP with
 * `fetch`, and hand out free port ranges and temporary directories.
 */
import { callPort, freePortRange } from '../../test/procs.ts';
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');

/** A running CLI child with everything it printed so far. */
export interface Cli {
  child: ChildProcessWithoutNullStreams;
  out: { stdout: string; stderr: string };
  /** Resolves with the exit code (null when a signal ended it) once its output is complete. */
  exited: Promise<number | null>;
}

/** Starts the CLI with a clean environment: no inherited OPSCONDUCTOR_* variable, plus `env`. */
export function spawnCli(args: string[], env: Record<string, string> = {}): Cli {
  // eslint-disable-next-line no-restricted-properties -- the child inherits the test process's environment
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith('OPSCONDUCTOR_') && k !== 'NODE_TEST_CONTEXT');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], { cwd: ROOT, env: { ...Object.fromEntries(inherited), ...env } });
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out.stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (out.stderr += s));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return { child, out, exited };
}

/** Whether the child has neither exited nor been ended by a signal. */
export function running(cli: Cli): boolean {
  return cli.child.exitCode === null && cli.child.signalCode === null;
}

/** Kills the child if it still runs and waits for it (cleanup hooks). */
export async function killCli(cli: Cli | undefined): Promise<void> {
  if (cli && running(cli)) {
    cli.child.kill('SIGKILL');
  }
  await cli?.exited;
}

/** `promise`, or a rejection naming `what` after `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a one-shot command to completion (killed after `timeoutMs`). */
export async function runCli(args: string[], env: Record<string, string> = {}, timeoutMs = 90_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = spawnCli(args, env);
  try {
    const code = await withTimeout(cli.exited, timeoutMs, `opsconductor ${args.join(' ')}`);
    return { code, ...cli.out };
  } finally {
    await killCli(cli);
  }
}

/** The body of GET /health. */
export interface HealthBody {
  service: string;
  status: string;
  version: string;
  checks: Array<{ name: string; status: string; message: string }>;
}
/** The error envelope of a failed request. */
export interface ErrorBody {
  error: { code: string; message: string };
  request_id: string;
}
/** The tokens of POST /auth/login. */
export interface TokenBody {
  access_token: string;
  refresh_token: string;
}

/** Polls GET /health on `port` until it answers 200; fails early when the child exits. */
export async function waitForHealth(cli: Cli, port: number, timeoutMs = 90_000): Promise<HealthBody> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!running(cli)) {
      throw new Error(`the CLI exited (${cli.child.exitCode ?? cli.child.signalCode}) before port ${port} was healthy:\n${cli.out.stderr}${cli.out.stdout}`);
    }
    try {
      const res = await callPort<HealthBody>(port, '/health');
      if (res.status === 200) {
        return res.body;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`port ${port} not healthy within ${timeoutMs} ms:\n${cli.out.stderr}${cli.out.stdout}`);
}

/** The JSON log lines the child printed (the console banner is not a log line). */
export function logLines(cli: Cli): string[] {
  return `${cli.out.stdout}\n${cli.out.stderr}`.split('\n').filter((l) => l.startsWith('{'));
}

/** Waits until the child printed `text` (its logs arrive asynchronously through the pipe). */
export async function waitForOutput(cli: Cli, text: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!`${cli.out.stdout}${cli.out.stderr}`.includes(text)) {
    if (Date.now() > deadline) {
      throw new Error(`the CLI did not print ${text} within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A base port P with P..P+11 free: the gateway and every service port of one `opsconductor start`. */
export const freeBasePort = () => freePortRange(12);

const tempDirs: string[] = [];

/** A new temporary directory, removed by `removeTempDirs`. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oc-cli-'));
  tempDirs.push(dir);
  return dir;
}

/** Whether a `fetch` failed because nothing listens on the port. */
export const isRefused = (e: unknown) => ((e as Error).cause as NodeJS.ErrnoException | undefined)?.code === 'ECONNREFUSED';

/** Removes every directory `tempDir` made (call it in the top-level `after`). */
export function removeTempDirs(): void {
  for (const dir of tempDirs) {
    rmSync(dir, { recursive: true, force: true });
  }
}
