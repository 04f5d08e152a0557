/** Public surface of the runs module. */
export { createRunEvents, type RunEvents } from './runs.events.ts';
export { createRunsRepo, type FinishResult, type RunsRepo, type StepWrite, type TargetFinish } from './runs.repo.ts';
export { CANCEL_CHANNEL, createRunsService, type PreparedRun, type QueueRunInput, type RunsService, WORK_CHANNEL } from './runs.service.ts';
export { runsRoutes, toRunResponse } from './runs.routes.ts';
