/**
 * Runs one rendered step on one target (or none): command over SSH, sftp transfer, http request,
 * signed webhook. Returns a classified outcome; never throws for remote failures.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { HttpCallError, httpCall } from '../executor/http.ts';
import { type ExecResult, SshConnectError, type SshConnection } from '../executor/ssh.ts';
import { decodeClixml } from '../executor/winrm/clixml.ts';
import { runWinrmCommand, WinrmError, type WinrmOptions } from '../executor/winrm/client.ts';
import { type CopyResult, copyToWinrm, powershellQuote as psQuote } from '../executor/winrm/copy.ts';
import type { ResolvedCredential } from '../modules/credentials/index.ts';
import type { TargetWithGroups } from '../modules/targets/index.ts';
import { resolveInside } from '../shared/safe-path.ts';

/** Final status of a step. */
export type StepStatus = 'succeeded' | 'failed' | 'timed_out' | 'canceled';

/** What a step produced. */
export interface StepOutcome {
  status: StepStatus;
  exitCode: number | null;
  stdout: string;
  stderr: string;
  error: string | null;
  /** Extra outputs besides OC_OUTPUT lines (e.g. an HTTP status code). */
  outputs?: Record<string, string>;
  /** The target could not be reached at all (connect, auth or host key). */
  unreachable?: boolean;
}

/** Everything a step may use. */
export interface StepEnv {
  target: TargetWithGroups | null;
  connection(): Promise<SshConnection>;
  /** How to reach a winrm target (undefined without a credential). */
  winrm(): WinrmOptions | undefined;
  resolveCredential(id: number): Promise<ResolvedCredential>;
  filesRoot: string;
  /** Aborted on cancel or run deadline; `signal.reason` is 'canceled' or 'timed_out'. */
  signal: AbortSignal;
  maxOutputBytes: number;
  onOutput(stream: 'stdout' | 'stderr', chunk: Buffer): void;
  /** Queues the notification of a notify step (rendered and masked by the caller); its id. Absent where steps cannot notify. */
  notify?(step: Record<string, unknown>): Promise<number>;
}

const aborted = (signal: AbortSignal): StepStatus => (signal.reason === 'timed_out' ? 'timed_out' : 'canceled');
const fail = (error: string, extra: Partial<StepOutcome> = {}): StepOutcome => ({ status: 'failed', exitCode: null, stdout: '', stderr: '', error, ...extra });

/** A POSIX shell single-quoted string. */
const shQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

function shellCommand(command: string, shell: string | undefined): string | undefined {
  const quoted = shQuote(command);
  switch (shell ?? 'sh') {
    case 'sh':
      return command;
    case 'bash':
      return `bash -c ${quoted}`;
    case 'powershell':
      return `pwsh -NoProfile -NonInteractive -Command ${quoted}`;
    default:
      return undefined;
  }
}

async function connect(env: StepEnv): Promise<SshConnection | StepOutcome> {
  if (!env.target || env.target.protocol !== 'ssh') {
    return fail('protocol_not_supported');
  }
  try {
    return await env.connection();
  } catch (e) {
    if (e instanceof SshConnectError) {
      return fail(`${e.kind}: ${e.message}`, { unreachable: true });
    }
    throw e;
  }
}

/** A finished (or killed) remote command as a step outcome. */
function commandOutcome(res: Pick<ExecResult, 'stdout' | 'stderr' | 'exitCode' | 'killed'> & { signal?: string | null }, env: StepEnv): StepOutcome {
  const status: StepStatus = res.killed === 'timeout' ? 'timed_out' : res.killed === 'aborted' ? aborted(env.signal) : res.exitCode === 0 ? 'succeeded' : 'failed';
  const error = status === 'succeeded' ? null : res.killed ? `${status}: the remote process was killed` : res.exitCode === null ? `terminated by signal ${res.signal ?? 'unknown'}` : `exit code ${res.exitCode}`;
  return { status, exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr, error };
}

const execOptions = (step: Record<string, unknown>, env: StepEnv) => ({
  timeoutMs: Number(step.timeout_s) * 1000,
  signal: env.signal,
  maxBytes: env.maxOutputBytes + 1,
  onStdout: (c: Buffer) => env.onOutput('stdout', c),
  onStderr: (c: Buffer) => env.onOutput('stderr', c),
});

/** A command line for WinRM: PowerShell (the default) gets the script UTF-16LE base64 encoded, as powershell.exe expects. */
function winrmCommand(command: string, shell: string | undefined): [string, string[]] | undefined {
  switch (shell ?? 'powershell') {
    case 'powershell':
      return ['powershell', ['-NoProfile', '-NonInteractive', '-EncodedCommand', Buffer.from(command, 'utf16le').toString('base64')]];
    case 'cmd':
      return [command, []];
    default:
      return undefined;
  }
}

async function runWinrm(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  const line = winrmCommand(String(step.command), step.shell as string | undefined);
  if (!line) {
    return fail(`shell "${String(step.shell)}" is not available over WinRM (use powershell or cmd)`);
  }
  const options = env.winrm();
  if (!options) {
    return fail('auth_failed: the target has no WinRM credential', { unreachable: true });
  }
  const powershell = line[0] === 'powershell';
  // PowerShell's stderr is CLIXML: it is decoded whole at the end, not streamed as it comes.
  const exec = { ...execOptions(step, env), ...(powershell ? { onStderr: undefined } : {}) };
  try {
    const result = await runWinrmCommand(options, line[0], line[1], exec);
    if (powershell && result.stderr) {
      result.stderr = decodeClixml(result.stderr);
      env.onOutput('stderr', Buffer.from(result.stderr));
    }
    return commandOutcome(result, env);
  } catch (e) {
    return winrmFailure(e);
  }
}

async function runCommand(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  if (env.target?.protocol === 'winrm') {
    return runWinrm(step, env);
  }
  const command = shellCommand(String(step.command), step.shell as string | undefined);
  if (command === undefined) {
    return fail(`shell "${String(step.shell)}" is not available over SSH`);
  }
  const conn = await connect(env);
  if (!('exec' in conn)) {
    return conn;
  }
  return commandOutcome(await conn.exec(command, execOptions(step, env)), env);
}

/** A WinRM failure as a step outcome. */
function winrmFailure(e: unknown): StepOutcome {
  if (e instanceof WinrmError) {
    return fail(`${e.kind === 'protocol' ? 'winrm_error' : e.kind}: ${e.message}`, { unreachable: e.kind !== 'protocol' });
  }
  throw e;
}

const transferred = (operation: string, bytes: number, outputs: Record<string, string> = {}): StepOutcome => ({
  status: 'succeeded',
  exitCode: 0,
  stdout: `${operation === 'upload' ? 'uploaded' : 'downloaded'} ${bytes} bytes\n`,
  stderr: '',
  error: null,
  outputs: { bytes: String(bytes), ...outputs },
});

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

async function runSftp(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
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
  if (!('exec' in conn)) {
    return conn;
  }
  const sftp = await conn.sftp();
  const transfer = new Promise<void>((resolve, reject) => {
    if (step.operation === 'upload') {
      sftp.fastPut(local, remote, (err) => (err ? reject(err) : resolve()));
    } else {
      mkdirSync(dirname(local), { recursive: true });
      sftp.fastGet(remote, local, (err) => (err ? reject(err) : resolve()));
    }
  });
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<StepStatus>((resolve) => {
    timer = setTimeout(() => resolve('timed_out'), Number(step.timeout_s) * 1000);
    env.signal.addEventListener('abort', () => resolve(aborted(env.signal)), { once: true });
  });
  try {
    const result = await Promise.race([transfer.then(() => 'done' as const), limit]);
    if (result !== 'done') {
      return fail(`${result}: transfer stopped`, { status: result });
    }
    return transferred(String(step.operation), statSync(local).size);
  } catch (e) {
    return fail(`sftp ${String(step.operation)} failed: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    sftp.end();
  }
}

async function authorization(step: Record<string, unknown>, env: StepEnv): Promise<Record<string, string>> {
  if (typeof step.credential_id !== 'number') {
    return {};
  }
  const cred = await env.resolveCredential(step.credential_id);
  if (step.auth === 'basic' || (!cred.token && cred.password)) {
    return { authorization: `Basic ${Buffer.from(`${cred.username ?? ''}:${cred.password ?? ''}`).toString('base64')}` };
  }
  return { authorization: `Bearer ${cred.token ?? cred.password ?? ''}` };
}

async function send(step: Record<string, unknown>, env: StepEnv, request: { method: string; headers: Record<string, string>; body?: string }, expect: (code: number) => boolean): Promise<StepOutcome> {
  try {
    const reply = await httpCall({ ...request, url: String(step.url), timeoutMs: Number(step.timeout_s) * 1000, signal: env.signal, maxBytes: env.maxOutputBytes + 1 });
    env.onOutput('stdout', Buffer.from(reply.body));
    const ok = expect(reply.statusCode);
    return { status: ok ? 'succeeded' : 'failed', exitCode: ok ? 0 : 1, stdout: reply.body, stderr: '', error: ok ? null : `unexpected HTTP status ${reply.statusCode}`, outputs: { status_code: String(reply.statusCode) } };
  } catch (e) {
    if (e instanceof HttpCallError) {
      return fail(e.message, { status: e.reason === 'timeout' ? 'timed_out' : e.reason === 'aborted' ? aborted(env.signal) : 'failed' });
    }
    throw e;
  }
}

async function runHttp(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  const headers: Record<string, string> = { ...(step.headers as Record<string, string> | undefined), ...(await authorization(step, env)) };
  let body: string | undefined;
  if (step.body !== undefined) {
    body = typeof step.body === 'string' ? step.body : JSON.stringify(step.body);
    headers['content-type'] ??= typeof step.body === 'string' ? 'text/plain' : 'application/json';
  }
  const expected = step.expect_status as number[] | undefined;
  return send(step, env, { method: String(step.method), headers, body }, (code) => (expected ? expected.includes(code) : code >= 200 && code < 300));
}

async function runWebhook(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  const body = JSON.stringify(step.payload ?? {});
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(step.headers as Record<string, string> | undefined) };
  if (typeof step.secret_credential_id === 'number') {
    const key = (await env.resolveCredential(step.secret_credential_id)).token ?? '';
    headers['x-opsconductor-signature'] = `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
  }
  return send(step, env, { method: String(step.method ?? 'POST'), headers, body }, (code) => code >= 200 && code < 300);
}

/** `OC_PARAM_<NAME>` for each parameter (booleans and numbers as text). */
const paramEnv = (params: Record<string, unknown>) => Object.entries(params).map(([k, v]) => [`OC_PARAM_${k.toUpperCase()}`, String(v)] as const);

/**
 * A library script: uploaded to a temporary path on the target (SFTP, or the WinRM copy), run
 * with its parameters as `OC_PARAM_*` environment variables, and removed whatever happened.
 */
async function runScript(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  const content = Buffer.from(String(step.content), 'base64');
  const params = (step.params as Record<string, unknown> | undefined) ?? {};
  const name = `oc-lib-${randomBytes(6).toString('hex')}-${String(step.file).split('/').pop()}`;
  if (env.target?.protocol === 'winrm') {
    const options = env.winrm();
    if (!options) {
      return fail('auth_failed: the target has no WinRM credential', { unreachable: true });
    }
    const path = `C:\\Windows\\Temp\\${name}`;
    const local = join(tmpdir(), name);
    writeFileSync(local, content);
    try {
      const copy = await copyToWinrm(options, local, path, { timeoutMs: Number(step.timeout_s) * 1000, signal: env.signal });
      if (!copy.verified) {
        return fail(`script upload failed: ${decodeClixml(copy.command.stderr).trim() || 'SHA-256 mismatch'}`);
      }
    } catch (e) {
      return winrmFailure(e);
    } finally {
      rmSync(local, { force: true });
    }
    const vars = paramEnv(params).map(([k, v]) => `$env:${k} = ${psQuote(v)}`);
    const args = ((step.args as string[] | undefined) ?? []).map(psQuote).join(' ');
    const run = [...vars, `try { & ${psQuote(path)} ${args} } finally { Remove-Item -LiteralPath ${psQuote(path)} -Force -ErrorAction SilentlyContinue }`, 'exit $LASTEXITCODE'].join('; ');
    return runWinrm({ ...step, type: 'command', shell: 'powershell', command: run }, env);
  }
  const conn = await connect(env);
  if (!('exec' in conn)) {
    return conn;
  }
  const path = `/tmp/${name}`;
  const sftp = await conn.sftp();
  try {
    await new Promise<void>((resolve, reject) => sftp.writeFile(path, content, { mode: 0o700 }, (err) => (err ? reject(err) : resolve())));
  } catch (e) {
    return fail(`script upload failed: ${(e as Error).message}`);
  } finally {
    sftp.end();
  }
  const vars = paramEnv(params).map(([k, v]) => `${k}=${shQuote(v)}`).join(' ');
  const shell = step.shell === 'powershell' ? 'pwsh -NoProfile -NonInteractive -File' : String(step.shell ?? 'sh');
  const args = ((step.args as string[] | undefined) ?? []).map(shQuote).join(' ');
  const command = `${vars} ${shell} ${path} ${args}; rc=$?; rm -f ${path}; exit $rc`;
  return commandOutcome(await conn.exec(command, execOptions(step, env)), env);
}

/** A notify step succeeds once its notification is queued (delivery, with retries, is the sender's). */
async function runNotify(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  if (!env.notify) {
    return fail('notify steps run only in job runs');
  }
  try {
    const id = await env.notify(step);
    return { status: 'succeeded', exitCode: 0, stdout: `notification ${id} queued (${String(step.channel)})\n`, stderr: '', error: null, outputs: { notification_id: String(id) } };
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 400) {
      return fail(`notify: ${(e as Error).message}`);
    }
    throw e;
  }
}

/** Runs `step` (already rendered) in `env`. */
export function runStep(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  switch (step.type) {
    case 'command':
      return runCommand(step, env);
    case 'sftp':
      return runSftp(step, env);
    case 'http':
      return runHttp(step, env);
    case 'webhook':
      return runWebhook(step, env);
    case 'notify':
      return runNotify(step, env);
    case 'script':
      return runScript(step, env);
    default:
      return Promise.resolve(fail(`unknown step type ${String(step.type)}`));
  }
}
