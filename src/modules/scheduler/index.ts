/** Public surface of the scheduler module. */
export { checkTimezone, localIso, parseCron } from './cron.ts';
export { createSchedulerLoop, type SchedulerLoop } from './scheduler.loop.ts';
export { createSchedulerRepo, SCHEDULES_CHANNEL, type SchedulerRepo } from './scheduler.repo.ts';
export { schedulerRoutes } from './scheduler.routes.ts';
export { createSchedulerService, type SchedulerService } from './scheduler.service.ts';
