/** Routes of the executor service (guide: Executor Service, port 3007). Operators only. */
import { actorOf } from '../../http/auth.plugin.ts';
import type { App } from '../../http/types.ts';
import {
  ExecuteBody,
  ExecuteResponse,
  ExecuteSftpBody,
  ExecuteSftpResponse,
  ExecuteSshBody,
  ExecuteWinrmBody,
  ExecuteSshResponse,
  ExecuteWinrmResponse,
  ExecuteWebhookBody,
  ExecuteWebhookResponse,
  ExecutionParams,
  ExecutionResponse,
} from './executor.schemas.ts';
import type { ExecutorService } from './executor.service.ts';

/** Registers /execute* and /executions/{id} on `app`. */
export function executorRoutes(app: App, { executor }: { executor: ExecutorService }): void {
  const tags = ['executor'];

  app.post('/execute', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Queue steps on one target (ad hoc execution)', body: ExecuteBody, response: { 200: ExecuteResponse } },
    handler: async (request) => {
      const { target_id, steps, job_run_id } = request.body;
      const id = await executor.execute(actorOf(request), { targetId: target_id, steps, jobRunId: job_run_id });
      return { execution_id: `exec_${id}`, status: 'running', ...(job_run_id ? { job_run_id } : {}) };
    },
  });

  app.get('/executions/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'An ad hoc execution', params: ExecutionParams, response: { 200: ExecutionResponse } },
    handler: async (request) => {
      const id = Number(request.params.id.replace(/^exec_/, ''));
      const { run, steps, output, exitCode } = await executor.getExecution(id);
      return {
        id: `exec_${run.id}`,
        status: run.status,
        output,
        exit_code: exitCode,
        steps: steps.map((s) => ({ step_index: s.step_index, name: s.name, status: s.status, exit_code: s.exit_code, stdout: s.stdout, stderr: s.stderr, error: s.error, duration_ms: s.duration_ms })),
      };
    },
  });

  app.post('/execute/ssh', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Run one command over SSH and wait for it', body: ExecuteSshBody, response: { 200: ExecuteSshResponse } },
    handler: async (request) => executor.ssh(actorOf(request), request.body),
  });

  app.post('/execute/winrm', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Run one command over WinRM (PowerShell or cmd) and wait for it', body: ExecuteWinrmBody, response: { 200: ExecuteWinrmResponse } },
    handler: async (request) => executor.winrm(actorOf(request), request.body),
  });

  app.post('/execute/sftp', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Upload or download one file over SFTP', body: ExecuteSftpBody, response: { 200: ExecuteSftpResponse } },
    handler: async (request) => executor.sftp(actorOf(request), request.body),
  });

  app.post('/execute/webhook', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Call a webhook and report its answer', body: ExecuteWebhookBody, response: { 200: ExecuteWebhookResponse } },
    handler: async (request) => executor.webhook(actorOf(request), request.body),
  });
}
