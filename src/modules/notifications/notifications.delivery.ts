/**
 * The sender: takes notification messages off the queue and delivers them (retries are scheduled
 * by the service as new delayed messages), and every half minute re-queues notifications whose
 * message was lost or whose sender died between sending and recording — at least once, with the
 * row as the record — and queues the events of runs finished in the last five minutes whose
 * notifications were never queued (their process died in between).
 */
import type { Logger } from '../../logging.ts';
import { QUEUES, type Queue } from '../../worker/queue.ts';
import type { NotificationsService } from './notifications.service.ts';

/** How delivery retries. */
export interface DeliveryOptions {
  maxAttempts: number;
  retryBaseS: number;
}

/** A `sending` notification whose sender has been quiet this long is taken to be lost. */
export const STALE_SENDING_S = 120;
const SWEEP_MS = 30_000;
/** Runs finished this recently have their events queued again by the sweep if they were lost. */
const RECOVER_WINDOW_S = 300;

/** Starts sending; returns the stop function. */
export async function startNotificationSender(deps: { queue: Queue; notifications: NotificationsService; logger: Logger; options: DeliveryOptions }): Promise<() => Promise<void>> {
  const { queue, notifications, logger, options } = deps;
  const id = await queue.work<{ id: number }>(QUEUES.notification, { batchSize: 10, pollingIntervalSeconds: 1 }, async (jobs) => {
    for (const job of jobs) {
      const result = await notifications.deliverOne(job.data.id, { ...options, staleS: STALE_SENDING_S });
      if (result === 'retry' || result === 'failed') {
        logger.warn({ notification_id: job.data.id, result }, 'notification not delivered');
      }
    }
  });
  const sweep = () =>
    notifications
      .sweep({ graceS: 60, staleS: STALE_SENDING_S })
      .then(() => notifications.recoverEvents(RECOVER_WINDOW_S, (runId, err) => logger.warn({ err, run_id: runId }, 'could not queue the notifications of a run')))
      .catch((err: unknown) => logger.warn({ err }, 'notification sweep failed'));
  void sweep();
  const timer = setInterval(sweep, SWEEP_MS);
  timer.unref();
  return async () => {
    clearInterval(timer);
    await queue.offWork({ id });
  };
}
