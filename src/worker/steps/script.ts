/**
 * Library script steps: the script copied to the target, run with its parameters, removed.
 */
import { randomBytes } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodeClixml } from '../../executor/winrm/clixml.ts';
import { copyToWinrm, powershellQuote as psQuote } from '../../executor/winrm/copy.ts';
import { runWinrm } from './command.ts';
import { commandOutcome, connect, execOptions, fail, shQuote, type StepEnv, type StepOutcome, winrmFailure } from './outcome.ts';

/** How long removing a script left behind by a stopped run may take. */
const CLEANUP_TIMEOUT_MS = 15_000;

/** `OC_PARAM_<NAME>` for each parameter (booleans and numbers as text). */
const paramEnv = (params: Record<string, unknown>) => Object.entries(params).map(([k, v]) => [`OC_PARAM_${k.toUpperCase()}`, String(v)] as const);

/** A script as uploaded: its bytes, its parameters, and a file name no other run uses. */
interface Script {
  content: Buffer;
  params: Record<string, unknown>;
  name: string;
  args: string[];
}

/** On Windows: copied through the WinRM copy to the Windows temp folder, run by PowerShell, removed. */
async function runOnWinrm(step: Record<string, unknown>, env: StepEnv, script: Script): Promise<StepOutcome> {
  const options = env.winrm();
  if (!options) {
    return fail('auth_failed: the target has no WinRM credential', { unreachable: true });
  }
  const path = `C:\\Windows\\Temp\\${script.name}`;
  const local = join(tmpdir(), script.name);
  writeFileSync(local, script.content);
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
  const vars = paramEnv(script.params).map(([k, v]) => `$env:${k} = ${psQuote(v)}`);
  const args = script.args.map(psQuote).join(' ');
  const remove = `Remove-Item -LiteralPath ${psQuote(path)} -Force -ErrorAction SilentlyContinue`;
  const run = [...vars, `try { & ${psQuote(path)} ${args} } finally { ${remove} }`, 'exit $LASTEXITCODE'].join('; ');
  const outcome = await runWinrm({ ...step, type: 'command', shell: 'powershell', command: run }, env);
  if (outcome.status === 'timed_out' || outcome.status === 'canceled') {
    // A terminated command never reaches its `finally`: remove the script in a shell of its own.
    await runWinrm({ type: 'command', shell: 'powershell', command: remove, timeout_s: CLEANUP_TIMEOUT_MS / 1000 }, { ...env, signal: new AbortController().signal, onOutput: () => {} }).catch(() => {});
  }
  return outcome;
}

/** Over SSH: written to /tmp by SFTP (mode 0700), run by its shell, removed whatever its exit code. */
async function runOnSsh(step: Record<string, unknown>, env: StepEnv, script: Script): Promise<StepOutcome> {
  const conn = await connect(env);
  if (!('exec' in conn)) {
    return conn;
  }
  const path = `/tmp/${script.name}`;
  const sftp = await conn.sftp();
  try {
    await new Promise<void>((resolve, reject) => sftp.writeFile(path, script.content, { mode: 0o700 }, (err) => (err ? reject(err) : resolve())));
  } catch (e) {
    return fail(`script upload failed: ${(e as Error).message}`);
  } finally {
    sftp.end();
  }
  const vars = paramEnv(script.params).map(([k, v]) => `${k}=${shQuote(v)}`).join(' ');
  const shell = step.shell === 'powershell' ? 'pwsh -NoProfile -NonInteractive -File' : String(step.shell ?? 'sh');
  const args = script.args.map(shQuote).join(' ');
  const command = `${vars} ${shell} ${path} ${args}; rc=$?; rm -f ${path}; exit $rc`;
  const result = await conn.exec(command, execOptions(step, env));
  if (result.killed) {
    // Stopped (timeout or cancel) before its own `rm` ran: remove the script in a command of its own.
    await conn.exec(`rm -f ${path}`, { timeoutMs: CLEANUP_TIMEOUT_MS }).catch(() => {});
  }
  return commandOutcome(result, env);
}

/**
 * A library script: uploaded to a temporary path on the target (SFTP, or the WinRM copy), run
 * with its parameters as `OC_PARAM_*` environment variables, and removed whatever happened.
 */
export function runScript(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  const script: Script = {
    content: Buffer.from(String(step.content), 'base64'),
    params: (step.params as Record<string, unknown> | undefined) ?? {},
    name: `oc-lib-${randomBytes(6).toString('hex')}-${String(step.file).split('/').pop()}`,
    args: (step.args as string[] | undefined) ?? [],
  };
  return env.target?.protocol === 'winrm' ? runOnWinrm(step, env, script) : runOnSsh(step, env, script);
}
