/** Public surface of the jobs module. */
export { createJobsRepo } from './jobs.repo.ts';
export { jobsRoutes, toJobResponse } from './jobs.routes.ts';
export { createJobsService, type JobsService } from './jobs.service.ts';
export { needsTargets, type Step, StepInput, type StepType } from './jobs.steps.ts';
export { maskParameters, type ParameterDeclarations, type ParameterValues, resolveParameters, secretValues } from './jobs.params.ts';
