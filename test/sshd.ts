/**
 * A private OpenSSH sshd for tests: loopback only, its own host key, a generated client key in
 * its authorized_keys, and a test user with a known password. Suites that need it use
 * `sshdSkip` — a visible skip when sshd is not installed, a failure under OPSCONDUCTOR_REQUIRE_ALL=1.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SSHD = '/usr/sbin/sshd';
/** The unprivileged login used by tests. */
export const SSH_TEST_USER = 'octest';
/** Its password (the account exists only for these tests; sshd listens on loopback only). */
export const SSH_TEST_PASSWORD = 'octest-password-for-tests';

const isRoot = process.getuid?.() === 0;

function userExists(name: string): boolean {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function ensureTestUser(): boolean {
  if (!userExists(SSH_TEST_USER)) {
    if (!isRoot) {
      return false;
    }
    execFileSync('useradd', ['-m', '-s', '/bin/sh', SSH_TEST_USER]);
  }
  if (isRoot) {
    execFileSync('chpasswd', { input: `${SSH_TEST_USER}:${SSH_TEST_PASSWORD}\n` });
  }
  return true;
}

/** Why sshd tests cannot run here, or undefined when they can. */
export function sshdUnavailable(): string | undefined {
  if (!existsSync(SSHD)) {
    return 'OpenSSH server not installed (apt-get install openssh-server)';
  }
  if (!isRoot && !userExists(SSH_TEST_USER)) {
    return `test user ${SSH_TEST_USER} missing and not root to create it`;
  }
  return undefined;
}

/** `describe` option: skip visibly when sshd is missing, fail when everything is required. */
export function sshdSkip(): string | false {
  const reason = sshdUnavailable();
  if (reason && process.env.OPSCONDUCTOR_REQUIRE_ALL === '1') {
    throw new Error(`sshd tests are required (OPSCONDUCTOR_REQUIRE_ALL=1) but ${reason}`);
  }
  return reason ?? false;
}

/** A free loopback port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

function keygen(path: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'opsconductor-test', '-f', path]);
  const line = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${path}.pub`], { encoding: 'utf8' });
  return line.split(' ')[1] as string;
}

/**
 * A fresh ed25519 private key in OpenSSH format, made by ssh-keygen (ssh2's own
 * `utils.generateKeyPairSync('ed25519')` makes a key its parser rejects about once in 400).
 */
export function ed25519PrivateKey(): string {
  const dir = mkdtempSync(join(tmpdir(), 'oc-key-'));
  try {
    keygen(join(dir, 'key'));
    return readFileSync(join(dir, 'key'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitForPort(port: number, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => socket.end(() => resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(`sshd did not listen on ${port}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A running sshd. */
export interface Sshd {
  host: string;
  port: number;
  /** Private key (OpenSSH format) authorised for the test user. */
  clientKey: string;
  /** SHA256 fingerprint of the client key's public half. */
  clientKeyFingerprint: string;
  /** SHA256 fingerprint of the server's current host key. */
  hostKeyFingerprint: string;
  /** Authorises one more public key (an `authorized_keys` line) for the test user. */
  authorize(publicKeyLine: string): void;
  /** Restarts sshd on the same port with a new host key (an impostor, as far as clients know). */
  swapHostKey(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts an sshd on a free loopback port (or `port`), on 127.0.0.1 or on each of `addresses`
 * (loopback ones; sshd takes at most 16 listen addresses, so start several for more).
 */
export async function startSshd(options: { addresses?: string[]; port?: number } = {}): Promise<Sshd> {
  if ((options.addresses?.length ?? 0) > 16) {
    throw new Error('sshd listens on at most 16 addresses: start one sshd per 16');
  }
  if (!ensureTestUser()) {
    throw new Error(`cannot create the test user ${SSH_TEST_USER}`);
  }
  mkdirSync('/run/sshd', { recursive: true });
  const dir = mkdtempSync(join(tmpdir(), 'oc-sshd-'));
  // sshd reads authorized_keys as the logging-in user: let it traverse the directory.
  chmodSync(dir, 0o711);
  const port = options.port ?? (await freePort());
  const clientKeyFingerprint = keygen(join(dir, 'client'));
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client.pub')), { mode: 0o644 });
  let child: ChildProcess | undefined;
  let generation = 0;

  const launch = async () => {
    generation++;
    const hostKey = join(dir, `host_${generation}`);
    const fingerprint = keygen(hostKey);
    writeFileSync(
      join(dir, 'sshd_config'),
      [
        `Port ${port}`,
        ...(options.addresses ?? ['127.0.0.1']).map((a) => `ListenAddress ${a}`),
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
        'PasswordAuthentication yes',
        'KbdInteractiveAuthentication no',
        'UsePAM no',
        'PermitRootLogin prohibit-password',
        'StrictModes no',
        'MaxStartups 1000:30:2000',
        'LogLevel ERROR',
        'Subsystem sftp internal-sftp',
        'SetEnv SHLVL=1',
        '',
      ].join('\n'),
    );
    child = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForPort(port, 10_000);
    return fingerprint;
  };

  const kill = async () => {
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child?.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  };

  const handle: Sshd = {
    host: options.addresses?.[0] ?? '127.0.0.1',
    port,
    clientKey: readFileSync(join(dir, 'client'), 'utf8'),
    clientKeyFingerprint,
    hostKeyFingerprint: await launch(),
    authorize: (line) => appendFileSync(join(dir, 'authorized_keys'), `${line.trim()}\n`),
    swapHostKey: async () => {
      await kill();
      handle.hostKeyFingerprint = await launch();
    },
    stop: async () => {
      await kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return handle;
}

/**
 * PIDs of the test user's processes whose command line matches `pattern` (a pgrep pattern; with
 * `exact`, the whole line): the remote side of commands run on the test sshd.
 */
export function testUserProcesses(pattern: string, options: { exact?: boolean } = {}): number[] {
  try {
    const args = ['-u', SSH_TEST_USER, ...(options.exact ? ['-x'] : []), '-f', pattern];
    return execFileSync('pgrep', args, { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number).sort();
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** Kills (SIGKILL) the test user's processes whose command line is exactly `command`. */
export function killTestUserProcesses(command: string): void {
  try {
    execFileSync('pkill', ['-KILL', '-u', SSH_TEST_USER, '-x', '-f', command]);
  } catch {
    // nothing left to kill
  }
}
