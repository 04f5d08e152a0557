/**
 * Runs one rendered step on one target (or none): command over SSH, sftp transfer, http request,
 * signed webhook. Returns a classified outcome; never throws for remote failures.
 */
import { runCommand } from './command.ts';
import { runHttp, runWebhook } from './http.ts';
import { fail, type StepEnv, type StepOutcome } from './outcome.ts';
import { runScript } from './script.ts';
import { runSftp } from './transfer.ts';

export type { StepEnv, StepOutcome, StepStatus } from './outcome.ts';

/** A notify step succeeds once its notification is queued (delivery, with retries, is the sender's). */
async function runNotify(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  if (!env.notify) {
    return fail('notify steps run only in job runs');
  }
  try {
    const id = await env.notify(step);
    return { status: 'succeeded', exitCode: 0, stdout: `notification ${id} queued (${String(step.channel)})\n`, stderr: '', error: null, outputs: { notification_id: String(id) } };
  } catch (e) {
    if ((e as { statusCode?: number }).statusCode === 400) {
      return fail(`notify: ${(e as Error).message}`);
    }
    throw e;
  }
}

/** Runs `step` (already rendered) in `env`. */
export function runStep(step: Record<string, unknown>, env: StepEnv): Promise<StepOutcome> {
  switch (step.type) {
    case 'command':
      return runCommand(step, env);
    case 'sftp':
      return runSftp(step, env);
    case 'http':
      return runHttp(step, env);
    case 'webhook':
      return runWebhook(step, env);
    case 'notify':
      return runNotify(step, env);
    case 'script':
      return runScript(step, env);
    default:
      return Promise.resolve(fail(`unknown step type ${String(step.type)}`));
  }
}
