/**
 * What a step produces and what it may use, with the outcome helpers every step type shares.
 */
import { type ExecResult, SshConnectError, type SshConnection } from '../../executor/ssh.ts';
import { WinrmError, type WinrmOptions } from '../../executor/winrm/client.ts';
import type { ResolvedCredential } from '../../modules/credentials/index.ts';
import type { TargetWithGroups } from '../../modules/targets/index.ts';

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

/** The status of a stopped step: the run's deadline passed, or it was canceled. */
export const aborted = (signal: AbortSignal): StepStatus => (signal.reason === 'timed_out' ? 'timed_out' : 'canceled');
/** A failed outcome with `error` (and anything in `extra`). */
export const fail = (error: string, extra: Partial<StepOutcome> = {}): StepOutcome => ({ status: 'failed', exitCode: null, stdout: '', stderr: '', error, ...extra });

/** A POSIX shell single-quoted string. */
export const shQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

/** A finished (or killed) remote command as a step outcome. */
export function commandOutcome(res: Pick<ExecResult, 'stdout' | 'stderr' | 'exitCode' | 'killed'> & { signal?: string | null }, env: StepEnv): StepOutcome {
  const status: StepStatus = res.killed === 'timeout' ? 'timed_out' : res.killed === 'aborted' ? aborted(env.signal) : res.exitCode === 0 ? 'succeeded' : 'failed';
  const error = status === 'succeeded' ? null : res.killed ? `${status}: the remote process was killed` : res.exitCode === null ? `terminated by signal ${res.signal ?? 'unknown'}` : `exit code ${res.exitCode}`;
  return { status, exitCode: res.exitCode, stdout: res.stdout, stderr: res.stderr, error };
}

/** Exec options from the step: its timeout, the run's signal, the output cap, live output. */
export const execOptions = (step: Record<string, unknown>, env: StepEnv) => ({
  timeoutMs: Number(step.timeout_s) * 1000,
  signal: env.signal,
  maxBytes: env.maxOutputBytes + 1,
  onStdout: (c: Buffer) => env.onOutput('stdout', c),
  onStderr: (c: Buffer) => env.onOutput('stderr', c),
});

/** A finished transfer of `bytes`. */
export const transferred = (operation: string, bytes: number, outputs: Record<string, string> = {}): StepOutcome => ({
  status: 'succeeded',
  exitCode: 0,
  stdout: `${operation === 'upload' ? 'uploaded' : 'downloaded'} ${bytes} bytes\n`,
  stderr: '',
  error: null,
  outputs: { bytes: String(bytes), ...outputs },
});

/** The target's SSH connection, or the outcome saying why there is none (unreachable for connect, auth and host-key failures). */
export async function connect(env: StepEnv): Promise<SshConnection | StepOutcome> {
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

/** A WinRM failure as a step outcome. */
export function winrmFailure(e: unknown): StepOutcome {
  if (e instanceof WinrmError) {
    return fail(`${e.kind === 'protocol' ? 'winrm_error' : e.kind}: ${e.message}`, { unreachable: e.kind !== 'protocol' });
  }
  throw e;
}

