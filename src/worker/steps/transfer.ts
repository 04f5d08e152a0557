/**
 * sftp steps: upload and download over SFTP, upload to Windows through the WinRM copy.
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { decodeClixml } from '../../executor/winrm/clixml.ts';
import { type CopyResult, copyToWinrm } from '../../executor/winrm/copy.ts';
import type { SshConnection } from '../../executor/ssh.ts';
import { resolveInside } from '../../shared/safe-path.ts';
import { aborted, connect, fail, type StepEnv, type StepOutcome, type StepStatus, transferred, winrmFailure } from './outcome.ts';

/** Upload to a winrm target: the file streamed through PowerShell and checked by SHA-256. */
async function copyWinrm(step: Record<string, unknown>, env: StepEnv, local: string, remote: string): Promise<StepOutcome> {
  if (step.operation !== 'upload') {
    return fail('protocol_not_supported: only uploads are available on WinRM targets (download is SSH/SFTP only)');
  }
  const options = env.winrm();
  if (!options) {
    return fail('auth_failed: the target has no WinRM credential', { unreachable: true });
  }
  let copy: CopyResult;
  try {
    copy = await copyToWinrm(options, local, remote, { timeoutMs: Number(step.timeout_s) * 1000, signal: env.signal, maxBytes: env.maxOutputBytes + 1 });
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? fail(`local_path: ${String(step.local_path)} does not exist`) : winrmFailure(e);
  }
  const { command } = copy;
  if (command.killed) {
    const status = command.killed === 'timeout' ? 'timed_out' : aborted(env.signal);
    return fail(`${status}: transfer stopped`, { status });
  }
  if (command.exitCode !== 0) {
    return fail(`upload failed: ${decodeClixml(command.stderr).trim() || `exit code ${command.exitCode}`}`, { exitCode: command.exitCode });
  }
  if (!copy.verified) {
    return fail(`upload failed: SHA-256 mismatch (sent ${copy.sha256}, the host wrote ${command.stdout.trim() || 'nothing'})`);
  }
  return transferred('upload', copy.bytes, { sha256: copy.sha256 });
}

/** Stops when the step's timeout passes or the run is stopped; `clear` releases the timer. */
function stopSignal(step: Record<string, unknown>, env: StepEnv): { stopped: Promise<StepStatus>; clear(): void } {
  let timer: NodeJS.Timeout | undefined;
  const stopped = new Promise<StepStatus>((resolve) => {
    timer = setTimeout(() => resolve('timed_out'), Number(step.timeout_s) * 1000);
    env.signal.addEventListener('abort', () => resolve(aborted(env.signal)), { once: true });
  });
  return { stopped, clear: () => clearTimeout(timer) };
}

/** Upload or download over SSH's SFTP subsystem. */
async function sftpTransfer(conn: SshConnection, step: Record<string, unknown>, env: StepEnv, local: string, remote: string): Promise<StepOutcome> {
  const sftp = await conn.sftp();
  const transfer = new Promise<void>((resolve, reject) => {
    if (step.operation === 'upload') {
      sftp.fastPut(local, remote, (err) => (err ? reject(err) : resolve()));
    } else {
      mkdirSync(dirname(local), { recursive: true });
      sftp.fastGet(remote, local, (err) => (err ? reject(err) : resolve()));
    }
  });
  const limit = stopSignal(step, env);
  try {
    const result = await Promise.race([transfer.then(() => 'done' as const), limit.stopped]);
    if (result !== 'done') {
      return fail(`${result}: transfer stopped`, { status: result });
    }
    return transferred(String(step.operation), statSync(local).size);
  } catch (e) {
    return fail(`sftp ${String(step.operation)} failed: ${(e as Error).message}`);
  } finally {
    limit.clear();
    sftp.end();
  }
}

/** An sftp step: `local_path` inside the file store, `remote_path` on the target. */
export async function runSftp(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  let local: string;
  try {
    local = resolveInside(env.filesRoot, String(step.local_path));
  } catch (e) {
    return fail(`local_path: ${(e as Error).message}`);
  }
  const remote = String(step.remote_path);
  if (env.target?.protocol === 'winrm') {
    return copyWinrm(step, env, local, remote);
  }
  const conn = await connect(env);
  return 'exec' in conn ? sftpTransfer(conn, step, env, local, remote) : conn;
}
