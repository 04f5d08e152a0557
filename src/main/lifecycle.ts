/**
 * Process lifecycle shared by every command: the first SIGTERM/SIGINT stops intake and drains,
 * a second one forces exit. The only place (with cli.ts) that touches signals or process.exit.
 */
import type { Logger } from '../logging.ts';

/** Calls `stop` on the first signal and exits when it finishes; a second signal exits at once. */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: forcing exit');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down (send again to force)');
    stop().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while shutting down');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
