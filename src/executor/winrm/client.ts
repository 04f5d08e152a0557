/**
 * WinRM client: a remote shell over WS-Management (Create shell → Command → Receive until done →
 * Signal terminate → Delete shell), on one connection per shell (see channel.ts for the transport:
 * authentication, encryption, TLS). No database, no domain types.
 */
import { cappedBytes } from '../../shared/output.ts';
import type { ExecOptions } from '../ssh.ts';
import { commandStopper, type StopReason } from '../stopper.ts';
import { type Channel, openChannel, WinrmError, type WinrmOptions } from './channel.ts';
import { soapRequest, soapResponse, type SoapTarget, TIMED_OUT_CODE, WsmanFault } from './soap.ts';

export { WinrmError, type WinrmFailureKind, type WinrmOptions } from './channel.ts';

/** How to run one command: {@link ExecOptions}, plus input for its stdin. */
export interface WinrmExecOptions extends ExecOptions {
  /** Sent (WS-Management Send) before output is read; stdin is closed after the last chunk. */
  stdin?: AsyncIterable<Buffer>;
}

/** Result of one command. */
export interface WinrmResult {
  stdout: string;
  stderr: string;
  exitCode: number | null;
  /** Set when we stopped the command: it ran past its timeout, or the caller aborted it. */
  killed?: StopReason;
}

/** The rejection of a request that `signal` aborted (undici rejects with the abort reason), not a failure of its own. */
const isStop = (e: unknown, signal: AbortSignal) => signal.aborted && e === signal.reason;

/**
 * Authenticated Identify: the product version the host announces. `timeoutMs` bounds the whole
 * exchange (past it: an offline WinrmError); aborting `signal` rejects with its abort error.
 */
export async function identify(options: WinrmOptions, bound: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<{ productVersion: string }> {
  const stopper = commandStopper(bound);
  stopper.stopIfAborted();
  let channel: Channel | undefined;
  try {
    channel = await openChannel(options, stopper.signal);
    return { productVersion: soapResponse.productVersion(await channel.send(soapRequest.identify(), stopper.signal)) };
  } catch (e) {
    if (isStop(e, stopper.signal) && stopper.reason() === 'timeout') {
      throw new WinrmError('offline', `The WinRM service did not answer an Identify within ${bound.timeoutMs} ms`);
    }
    throw e;
  } finally {
    stopper.dispose();
    await channel?.close().catch(() => {});
  }
}

/** Sends `input` to the command's stdin, one Send per chunk, the last one marked End; stops early when `stop` aborts. */
async function sendInput(channel: Channel, target: SoapTarget, shellId: string, commandId: string, input: AsyncIterable<Buffer>, stop: AbortSignal): Promise<void> {
  let pending: Buffer | undefined;
  for await (const chunk of input) {
    if (stop.aborted) {
      return;
    }
    if (pending) {
      soapResponse.ok(await channel.send(soapRequest.send(target, shellId, commandId, pending, false), stop));
    }
    pending = chunk;
  }
  if (!stop.aborted) {
    soapResponse.ok(await channel.send(soapRequest.send(target, shellId, commandId, pending ?? Buffer.alloc(0), true), stop));
  }
}

/** Longest removing a stopped command's shell may take. */
const CLEANUP_TIMEOUT_MS = 5000;

/** Terminates the command and deletes the shell over a fresh connection (the current one may be busy or broken). */
async function removeShell(options: WinrmOptions, target: SoapTarget, shellId: string, commandId: string | undefined): Promise<void> {
  // Bounded: whoever stopped the command waits for this, and the host may have gone silent.
  const signal = AbortSignal.timeout(CLEANUP_TIMEOUT_MS);
  const cleanup = await openChannel(options, signal);
  try {
    if (commandId !== undefined) {
      await cleanup.send(soapRequest.terminate(target, shellId, commandId), signal).catch(() => {});
    }
    await cleanup.send(soapRequest.deleteShell(target, shellId), signal);
  } finally {
    await cleanup.close();
  }
}

/** One {@link runWinrmCommand} call: where it runs, over which connection, and what stops it. */
interface Run {
  options: WinrmOptions;
  target: SoapTarget;
  channel: Channel;
  exec: WinrmExecOptions;
  stopper: ReturnType<typeof commandStopper>;
}

/** A run whose command has started in its shell. */
interface StartedRun extends Run {
  shellId: string;
  commandId: string;
}

type Received = ReturnType<typeof soapResponse.received>;

/** Output kept up to `maxBytes` per stream; the callbacks see every chunk. */
function commandOutput(exec: WinrmExecOptions) {
  const max = exec.maxBytes ?? Number.MAX_SAFE_INTEGER;
  const [stdout, stderr] = [cappedBytes(max), cappedBytes(max)];
  return {
    add(received: Received) {
      received.stdout.forEach((c) => (stdout.push(c), exec.onStdout?.(c)));
      received.stderr.forEach((c) => (stderr.push(c), exec.onStderr?.(c)));
    },
    text: () => ({ stdout: stdout.text(), stderr: stderr.text() }),
  };
}

/**
 * One Receive: what arrived; `'stopped'` when the command was stopped meanwhile; undefined when
 * nothing happened within the operation timeout.
 */
async function receiveOnce(run: StartedRun): Promise<Received | 'stopped' | undefined> {
  const stop = run.stopper.signal;
  let xml: string;
  try {
    xml = await run.channel.send(soapRequest.receive(run.target, run.shellId, run.commandId), stop);
  } catch (e) {
    if (stop.aborted) {
      return 'stopped';
    }
    throw e;
  }
  try {
    return soapResponse.received(xml);
  } catch (e) {
    if (e instanceof WsmanFault && e.code === TIMED_OUT_CODE) {
      return undefined;
    }
    throw e;
  }
}

/** Receives output until the command is done (its exit code) or stopped (undefined). */
async function receiveUntilDone(run: StartedRun, output: ReturnType<typeof commandOutput>): Promise<{ exitCode: number | null } | undefined> {
  while (!run.stopper.signal.aborted) {
    const received = await receiveOnce(run);
    if (received === 'stopped') {
      return undefined;
    }
    if (received === undefined) {
      continue; // nothing happened within the operation timeout: ask again
    }
    output.add(received);
    if (received.done) {
      return { exitCode: received.exitCode };
    }
  }
  return undefined;
}

/** Feeds stdin, receives until the command is done or stopped, then ends the command and deletes its shell. */
async function driveCommand(run: StartedRun): Promise<WinrmResult> {
  const { options, target, channel, exec, stopper, shellId, commandId } = run;
  const output = commandOutput(exec);
  if (exec.stdin) {
    await sendInput(channel, target, shellId, commandId, exec.stdin, stopper.signal).catch((e: unknown) => {
      if (!stopper.signal.aborted) {
        throw e;
      }
    });
  }
  const done = await receiveUntilDone(run, output);
  if (done) {
    await channel.send(soapRequest.terminate(target, shellId, commandId)).catch(() => {});
    await channel.send(soapRequest.deleteShell(target, shellId)).catch(() => {});
    return { ...output.text(), exitCode: done.exitCode };
  }
  // Stopped: the current connection may still be busy with the Receive.
  await removeShell(options, target, shellId, commandId);
  return { ...output.text(), exitCode: null, killed: stopper.reason() };
}

/** What a command stopped before it started produced: nothing. */
const notStarted = (stopper: Run['stopper']): WinrmResult => ({ stdout: '', stderr: '', exitCode: null, killed: stopper.reason() });

/**
 * Creates the shell and starts the command in it (both stoppable: a host that never answers must
 * not outlast the timeout), then drives it; on a failure or a stop, removes the shell it created.
 */
async function runInShell(run: Run, command: string, args: string[]): Promise<WinrmResult> {
  const stop = run.stopper.signal;
  let shellId: string | undefined;
  let commandId: string | undefined;
  try {
    shellId = soapResponse.shellId(await run.channel.send(soapRequest.createShell(run.target), stop));
    const line = soapRequest.command(run.target, shellId, command, args, { stdin: run.exec.stdin !== undefined });
    commandId = soapResponse.commandId(await run.channel.send(line, stop));
    return await driveCommand({ ...run, shellId, commandId });
  } catch (e) {
    if (shellId !== undefined) {
      await removeShell(run.options, run.target, shellId, commandId).catch(() => {});
    }
    if (isStop(e, stop)) {
      return notStarted(run.stopper);
    }
    throw e;
  }
}

/**
 * Runs `command` with `args` in a new remote shell. A timeout or an abort terminates the command
 * and deletes the shell (over a fresh connection: the current one is busy with the Receive), so
 * nothing keeps running on the host; one that comes while connecting or starting the command ends
 * the call then, with empty output.
 */
export async function runWinrmCommand(options: WinrmOptions, command: string, args: string[], exec: WinrmExecOptions = {}): Promise<WinrmResult> {
  const target: SoapTarget = { url: options.url, operationTimeoutS: options.operationTimeoutS ?? 20 };
  const stopper = commandStopper(exec);
  stopper.stopIfAborted();
  let channel: Channel | undefined;
  try {
    channel = await openChannel(options, stopper.signal);
    return await runInShell({ options, target, channel, exec, stopper }, command, args);
  } catch (e) {
    if (isStop(e, stopper.signal)) {
      return notStarted(stopper);
    }
    throw e instanceof WsmanFault ? new WinrmError('protocol', e.message) : e;
  } finally {
    stopper.dispose();
    await channel?.close().catch(() => {});
  }
}
