/**
 * The tools OpsConductor is compared with: parallel-ssh (Debian `pssh`) and Ansible ad hoc with
 * the `raw` module (Debian `ansible-core`). Both use the system OpenSSH client with the fleet's
 * ssh_config (same key, same KEX curve25519-sha256, no known_hosts, no connection reuse).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { type Fleet, KEX } from './fleet.ts';

export const INSTALL_HINT = 'apt-get install -y pssh ansible-core';

/** Result of one timed tool invocation. */
export interface ToolRun {
  wallMs: number;
  ok: boolean;
  succeeded: number;
  exitCode: number | null;
  /** CPU the tool measured itself (when its process outlives the run). */
  clientCpuMs?: number;
}

/** A comparison tool, ready to run on the fleet. */
export interface Tool {
  name: string;
  version: string;
  run(timeoutMs: number): Promise<ToolRun>;
  stop?(): Promise<void>;
}

function which(names: string[]): string | undefined {
  for (const name of names) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
    if (found.status === 0 && found.stdout.trim()) {
      return found.stdout.trim();
    }
  }
  return undefined;
}

/** Which tools are missing (empty when both are installed). */
export function missingTools(): string[] {
  const missing: string[] = [];
  if (!which(['parallel-ssh', 'pssh'])) {
    missing.push('parallel-ssh (Debian package pssh)');
  }
  if (!which(['ansible'])) {
    missing.push('ansible (Debian package ansible-core)');
  }
  return missing;
}

/** Runs `command` with `args`, timing spawn → exit; kills it after `timeoutMs`. */
function timed(command: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ wallMs: number; exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const wallMs = performance.now() - started;
      if (signal === 'SIGKILL') {
        reject(new Error(`${command} did not finish within ${Math.round(timeoutMs / 1000)} s`));
        return;
      }
      resolve({ wallMs, exitCode: code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Environment for the tools: no ssh agent, the system python (not a pyenv shim) for Ansible. */
function toolEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.SSH_AUTH_SOCK;
  return env;
}

/** parallel-ssh -p <concurrency> over the fleet. */
export function pssh(fleet: Fleet, dir: string, concurrency: number, command: string): Tool {
  const binary = which(['parallel-ssh', 'pssh']) ?? 'parallel-ssh';
  const hostsFile = join(dir, 'pssh-hosts');
  writeFileSync(hostsFile, `${fleet.hosts.join('\n')}\n`);
  const version = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  const env = toolEnv({});
  return {
    name: 'parallel-ssh',
    version: `${(version.stdout || version.stderr).trim()}`,
    async run(timeoutMs) {
      // -t: per-host timeout (s); -x: extra ssh arguments (our ssh_config: key, port, user, KEX).
      const res = await timed(binary, ['-p', String(concurrency), '-t', '120', '-h', hostsFile, '-x', `-F ${fleet.sshConfigFile}`, command], env, timeoutMs);
      const succeeded = (res.stdout.match(/\[SUCCESS\]/g) ?? []).length;
      return { wallMs: res.wallMs, exitCode: res.exitCode, succeeded, ok: res.exitCode === 0 && succeeded === fleet.hosts.length };
    },
  };
}

/** `ansible all -m raw -f <concurrency>` over the fleet (no facts, no ControlPersist). */
export function ansible(fleet: Fleet, dir: string, concurrency: number, command: string): Tool {
  const home = join(dir, 'ansible');
  mkdirSync(join(home, 'tmp'), { recursive: true });
  const inventory = join(home, 'inventory.ini');
  writeFileSync(
    inventory,
    [
      '[fleet]',
      ...fleet.hosts,
      '',
      '[fleet:vars]',
      'ansible_user=octest',
      `ansible_port=${fleet.port}`,
      `ansible_ssh_private_key_file=${fleet.clientKeyFile}`,
      `ansible_ssh_common_args='-F ${fleet.sshConfigFile} -o KexAlgorithms=${KEX}'`,
      '',
    ].join('\n'),
  );
  const config = join(home, 'ansible.cfg');
  writeFileSync(
    config,
    [
      '[defaults]',
      'host_key_checking = False',
      `forks = ${concurrency}`,
      'gathering = explicit',
      'retry_files_enabled = False',
      'nocolor = True',
      `local_tmp = ${join(home, 'tmp')}`,
      '',
      '[ssh_connection]',
      // Ansible's default ssh_args add ControlPersist=60s, which would let runs 2 and 3 reuse
      // runs 1's connections; every tool here pays a fresh handshake per host per run.
      'ssh_args = -o ControlMaster=no -o ControlPath=none',
      '',
    ].join('\n'),
  );
  const env = toolEnv({ ANSIBLE_CONFIG: config, ANSIBLE_HOME: home, ANSIBLE_HOST_KEY_CHECKING: 'False', ANSIBLE_NOCOLOR: '1' });
  const version = spawnSync('ansible', ['--version'], { encoding: 'utf8', env });
  return {
    name: 'ansible',
    version: (version.stdout.split('\n')[0] ?? '').trim(),
    async run(timeoutMs) {
      const res = await timed('ansible', ['all', '-i', inventory, '-m', 'raw', '-a', command, '-f', String(concurrency)], env, timeoutMs);
      const succeeded = (res.stdout.match(/\| CHANGED \| rc=0 >>/g) ?? []).length;
      return { wallMs: res.wallMs, exitCode: res.exitCode, succeeded, ok: res.exitCode === 0 && succeeded === fleet.hosts.length };
    },
  };
}

/** OpsConductor's own SSH transport without OpsConductor: a long-lived child (ssh2-fanout.ts). */
export function ssh2Direct(fleet: Fleet, dir: string, concurrency: number, command: string): Tool {
  const hostsFile = join(dir, 'ssh2-hosts');
  writeFileSync(hostsFile, `${fleet.hosts.join('\n')}\n`);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', join(import.meta.dirname, 'ssh2-fanout.ts'), hostsFile, String(fleet.port), fleet.clientKeyFile, String(concurrency), command],
    { cwd: join(import.meta.dirname, '..', '..'), stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-4000)));
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    name: 'ssh2',
    version: 'ssh2 via src/executor/ssh.ts',
    async run(timeoutMs) {
      child.stdin.write('run\n');
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`ssh2-fanout.ts did not answer within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
      });
      try {
        const next = await Promise.race([lines.next(), timeout]);
        if (next.done) {
          throw new Error(`ssh2-fanout.ts exited: ${stderr}`);
        }
        const r = JSON.parse(next.value) as { wallMs: number; cpuMs: number; succeeded: number };
        return { wallMs: r.wallMs, clientCpuMs: r.cpuMs, succeeded: r.succeeded, exitCode: 0, ok: r.succeeded === fleet.hosts.length };
      } finally {
        clearTimeout(timer);
      }
    },
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        const force = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(force);
          resolve();
        });
        child.stdin.end();
      }),
  };
}
