/**
 * A loopback fleet of OpenSSH hosts for the fan-out benchmark: N addresses 127.0.0.1 … (then
 * 127.0.1.x, …) on one port, sharded over ceil(N/16) sshd processes (one sshd accepts at most 16
 * ListenAddress lines). One host key for the fleet, one ed25519 client key authorised for the
 * user `octest`. Every client must use the same key exchange: the fleet only offers
 * curve25519-sha256.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';

export const SSHD = '/usr/sbin/sshd';
export const FLEET_USER = 'octest';
export const KEX = 'curve25519-sha256';
const ADDRESSES_PER_SSHD = 16;

/** The i-th fleet address (0-based): 127.0.0.1 … 127.0.0.254, then 127.0.1.1 …, never .0 or .255. */
export function fleetAddress(i: number): string {
  const third = Math.floor(i / 254);
  if (third > 255) {
    throw new Error('at most 65024 loopback hosts');
  }
  return `127.0.${third}.${(i % 254) + 1}`;
}

function userExists(name: string): boolean {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes sure the login user exists (created like test/sshd.ts does, when running as root) and is
 * not locked: with `UsePAM no`, sshd refuses every login of an account whose password field
 * starts with "!" (what `useradd` leaves), public keys included.
 */
export function ensureFleetUser(): void {
  const root = process.getuid?.() === 0;
  if (!userExists(FLEET_USER)) {
    if (!root) {
      throw new Error(`user ${FLEET_USER} does not exist and only root can create it (useradd -m -s /bin/sh -p '*' ${FLEET_USER})`);
    }
    execFileSync('useradd', ['-m', '-s', '/bin/sh', '-p', '*', FLEET_USER]);
  }
  const locked = root && execFileSync('getent', ['shadow', FLEET_USER], { encoding: 'utf8' }).split(':')[1]?.startsWith('!');
  if (locked) {
    execFileSync('usermod', ['-p', '*', FLEET_USER]);
  }
}

/** A free TCP port on 127.0.0.1 (sshd then binds it on every fleet address). */
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

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    socket.setTimeout(1000);
    socket.once('connect', () => socket.end(() => resolve(true)));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A running fleet. */
export interface Fleet {
  port: number;
  hosts: string[];
  /** Private half of the authorised client key (OpenSSH format) and its file. */
  clientKey: string;
  clientKeyFile: string;
  /** An ssh_config for OpenSSH clients (pssh, ansible): key, user, KEX, no known_hosts. */
  sshConfigFile: string;
  sshdPids: number[];
  stop(): Promise<void>;
}

function keygen(path: string): void {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'opsconductor-bench', '-f', path]);
}

/**
 * How the fleet's sshd runs. `reexec: false` starts it with `-r`: each connection is served by a
 * fork of the listener instead of a freshly executed sshd, which roughly halves the fleet's CPU
 * per connection. The fleet stands in for N remote machines but burns this machine's 2 CPUs; with
 * the stock re-exec, it takes 25–30 ms of CPU per connection here, more than any client, and the
 * comparison measures mostly the fleet. Every tool meets the same fleet either way.
 */
export interface FleetOptions {
  reexec: boolean;
}

/** Starts the fleet in `dir` (which the caller removes). */
export async function startFleet(dir: string, count: number, log: (line: string) => void, options: FleetOptions): Promise<Fleet> {
  ensureFleetUser();
  mkdirSync('/run/sshd', { recursive: true });
  // sshd reads authorized_keys as the logging-in user: let it traverse the directory.
  chmodSync(dir, 0o711);
  const hostKey = join(dir, 'host_ed25519');
  const clientKeyFile = join(dir, 'client_ed25519');
  keygen(hostKey);
  keygen(clientKeyFile);
  const authorizedKeys = join(dir, 'authorized_keys');
  writeFileSync(authorizedKeys, readFileSync(`${clientKeyFile}.pub`), { mode: 0o644 });
  const hosts = Array.from({ length: count }, (_, i) => fleetAddress(i));

  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              resolve();
              return;
            }
            const force = setTimeout(() => child.kill('SIGKILL'), 3000);
            child.once('exit', () => {
              clearTimeout(force);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      ),
    );
  };

  // A port free on 127.0.0.1 is almost always free on the other loopback addresses; retry if not.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const errors: string[] = [];
    for (let shard = 0; shard * ADDRESSES_PER_SSHD < count; shard++) {
      const addresses = hosts.slice(shard * ADDRESSES_PER_SSHD, (shard + 1) * ADDRESSES_PER_SSHD);
      const config = join(dir, `sshd_${shard}.conf`);
      writeFileSync(
        config,
        [
          `Port ${port}`,
          ...addresses.map((a) => `ListenAddress ${a}`),
          `HostKey ${hostKey}`,
          `PidFile ${join(dir, `sshd_${shard}.pid`)}`,
          `AuthorizedKeysFile ${authorizedKeys}`,
          `AllowUsers ${FLEET_USER}`,
          'PubkeyAuthentication yes',
          'PasswordAuthentication no',
          'KbdInteractiveAuthentication no',
          'UsePAM no',
          'StrictModes no',
          'PermitRootLogin no',
          'X11Forwarding no',
          'PrintMotd no',
          'UseDNS no',
          `KexAlgorithms ${KEX}`,
          'MaxStartups 1000:30:2000',
          'MaxSessions 1000',
          'LogLevel ERROR',
          'SetEnv SHLVL=1',
          '',
        ].join('\n'),
      );
      const child = spawn(SSHD, [...(options.reexec ? [] : ['-r']), '-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr?.on('data', (chunk: Buffer) => errors.push(chunk.toString('utf8')));
      children.push(child);
    }
    const deadline = Date.now() + 10_000;
    let pending = [...hosts];
    while (pending.length > 0 && Date.now() < deadline && children.every((c) => c.exitCode === null)) {
      const results = await Promise.all(pending.map((h) => canConnect(h, port)));
      pending = pending.filter((_, i) => !results[i]);
      if (pending.length > 0) {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (pending.length === 0) {
      log(`fleet: ${count} hosts ${hosts[0]} … ${hosts[count - 1]} port ${port}, ${children.length} sshd processes`);
      const sshConfigFile = join(dir, 'ssh_config');
      writeFileSync(
        sshConfigFile,
        [
          'Host *',
          `  User ${FLEET_USER}`,
          `  Port ${port}`,
          `  IdentityFile ${clientKeyFile}`,
          '  IdentitiesOnly yes',
          '  IdentityAgent none',
          `  KexAlgorithms ${KEX}`,
          '  StrictHostKeyChecking no',
          '  UserKnownHostsFile /dev/null',
          '  GlobalKnownHostsFile /dev/null',
          '  BatchMode yes',
          '  LogLevel ERROR',
          '  ControlMaster no',
          '  ControlPath none',
          '  ConnectTimeout 30',
          '',
        ].join('\n'),
      );
      return {
        port,
        hosts,
        clientKey: readFileSync(clientKeyFile, 'utf8'),
        clientKeyFile,
        sshConfigFile,
        sshdPids: children.map((c) => c.pid ?? 0),
        stop,
      };
    }
    await stop();
    children.length = 0;
    if (attempt >= 3) {
      throw new Error(`the sshd fleet did not come up on port ${port}: ${pending.length} addresses not listening; sshd said: ${errors.join('').trim() || '(nothing)'}`);
    }
    log(`fleet: port ${port} not usable on every address, retrying (${errors.join('').trim()})`);
  }
}
