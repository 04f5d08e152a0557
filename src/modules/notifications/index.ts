/** Public surface of the notifications module. */
export { CHANNELS, type Channel } from './notifications.channels.ts';
export { startNotificationSender, STALE_SENDING_S } from './notifications.delivery.ts';
export { createNotificationsRepo, type NotificationsRepo } from './notifications.repo.ts';
export { notificationsRoutes } from './notifications.routes.ts';
export { eventOfStatus, type JobNotify } from './notifications.events.ts';
export { checkDestination, createNotificationsService, type NotificationsService } from './notifications.service.ts';
export { JOB_EVENTS, type JobEvent } from './notifications.templates.ts';
