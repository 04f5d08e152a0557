/**
 * Command steps: a shell command over SSH, or PowerShell/cmd over WinRM.
 */
import { decodeClixml } from '../../executor/winrm/clixml.ts';
import { runWinrmCommand } from '../../executor/winrm/client.ts';
import { commandOutcome, connect, execOptions, fail, shQuote, type StepEnv, type StepOutcome, winrmFailure } from './outcome.ts';

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

/** A command over WinRM; PowerShell stderr (CLIXML) is decoded to text at the end. */
export async function runWinrm(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
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

/** A command step: over WinRM on winrm targets, else over the target's SSH connection in the chosen shell. */
export async function runCommand(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
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

