/**
 * The real CLI as child processes for multi-process tests (workers, schedulers, an API): spawned
 * with only the given OPSCONDUCTOR_* settings and a data directory of their own, their output
 * kept for failure messages.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A running CLI child and everything it printed. */
export interface Proc {
  name: string;
  child: ChildProcessWithoutNullStreams;
  output: { text: string };
  exited: Promise<void>;
}

export const procs: Proc[] = [];
export const tempDirs: string[] = [];

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oc-workers-'));
  tempDirs.push(dir);
  return dir;
}

export function alive(proc: Proc): boolean {
  return proc.child.exitCode === null && proc.child.signalCode === null;
}

/** Starts `opsconductor …args` with no inherited OPSCONDUCTOR_* variable, plus `env` and its own data directory. */
export function spawnCli(name: string, args: string[], env: Record<string, string>): Proc {
  const inherited = Object.entries(process.env).filter(([k]) => !k.startsWith('OPSCONDUCTOR_') && k !== 'NODE_TEST_CONTEXT');
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/cli.ts', ...args], {
    cwd: ROOT,
    env: { ...Object.fromEntries(inherited), ...env, OPSCONDUCTOR_DATA_DIR: tempDir() },
  });
  const output = { text: '' };
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output.text += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output.text += s));
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const proc = { name, child, output, exited };
  procs.push(proc);
  return proc;
}

export async function killProc(proc: Proc): Promise<void> {
  if (alive(proc)) {
    proc.child.kill('SIGKILL');
  }
  await proc.exited;
}

export type Truthy<T> = Exclude<T, false | null | undefined | 0 | ''>;

/** Polls `check` until it returns a truthy value; fails with `what` (and `proc`'s output) after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs: number, intervalMs = 100, proc?: Proc): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && !alive(proc)) {
      throw new Error(`${proc.name} exited while waiting for ${what}:\n${proc.output.text}`);
    }
    const value = await check();
    if (value) {
      return value as Truthy<T>;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not within ${timeoutMs} ms${proc ? `\n${proc.name} printed:\n${proc.output.text}` : ''}`);
    }
    await sleep(intervalMs);
  }
}

/** Waits until a background process logged `<role> running` (printed once its loops are started). */
export async function waitForRunning(proc: Proc, role: 'worker' | 'scheduler'): Promise<void> {
  await waitFor(`${proc.name} running`, () => proc.output.text.includes(`"msg":"${role} running"`), 60_000, 100, proc);
}

/** An HTTP call to 127.0.0.1:`port`; the body is parsed JSON. */
export async function callPort<T = unknown>(port: number, path: string, init: { method?: string; token?: string; json?: unknown } = {}) {
  const headers: Record<string, string> = {};
  if (init.token) {
    headers.authorization = `Bearer ${init.token}`;
  }
  if (init.json !== undefined) {
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: init.method ?? 'GET',
    headers,
    body: init.json === undefined ? undefined : JSON.stringify(init.json),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: (text ? JSON.parse(text) : undefined) as T };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Ports handed out by this process, never handed out twice. */
const reservedPorts = new Set<number>();

/**
 * A base port P with P .. P + count - 1 free on loopback, below Linux's ephemeral range (so
 * outgoing sockets cannot take them meanwhile), for processes that listen on fixed ports.
 */
export async function freePortRange(count = 1): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    const ports = Array.from({ length: count }, (_, i) => base + i);
    if (ports.some((p) => reservedPorts.has(p))) {
      continue;
    }
    if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) {
      ports.forEach((p) => reservedPorts.add(p));
      return base;
    }
  }
  throw new Error(`no free range of ${count} ports found`);
}
