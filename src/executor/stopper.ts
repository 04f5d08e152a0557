/**
 * When a remote command must stop, and why: it ran past `timeoutMs`, or the caller aborted
 * `signal`. Shared by the SSH and WinRM executors, which each stop the remote side their own way
 * when `signal` here aborts.
 */

/** Why a command was stopped. */
export type StopReason = 'timeout' | 'aborted';

/** Watches `options` from now until `dispose`; the first of timeout and abort wins. */
export function commandStopper(options: { timeoutMs?: number; signal?: AbortSignal }) {
  const stop = new AbortController();
  let reason: StopReason | undefined;
  const kill = (why: StopReason) => {
    reason ??= why;
    stop.abort();
  };
  const timer = options.timeoutMs ? setTimeout(() => kill('timeout'), options.timeoutMs) : undefined;
  const onAbort = () => kill('aborted');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  return {
    /** Aborts once, when the command must stop. */
    signal: stop.signal,
    /** Why it was stopped; undefined while it was not. */
    reason: () => reason,
    /** Catches up on an abort that came before this stopper existed (it fires no event). */
    stopIfAborted(): void {
      if (options.signal?.aborted) {
        onAbort();
      }
    },
    dispose(): void {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    },
  };
}
