/** Public surface of the executor module. */
export { executorRoutes } from './executor.routes.ts';
export { createExecutorService, type ExecutorService } from './executor.service.ts';
