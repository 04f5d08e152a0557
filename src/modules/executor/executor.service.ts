/**
 * Ad hoc execution (guide: Executor Service): queued multi-step executions on one target, and
 * synchronous single commands, transfers and webhook calls. Remote failures are reported in the
 * body (the endpoint's job is to report on the remote system); our own failures are errors.
 */
import type { SshConnection } from '../../executor/ssh.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import { capOutput, createMasker, parseOutputs } from '../../shared/output.ts';
import type { Actor } from '../../shared/roles.ts';
import { resolveInside } from '../../shared/safe-path.ts';
import type { TemplateEngine } from '../../shared/templating.ts';
import { renderStep, targetView } from '../../worker/render.ts';
import { runStep, type StepEnv, type StepOutcome } from '../../worker/steps/index.ts';
import type { AuditService } from '../audit/index.ts';
import { checkRunPlatforms } from '../libraries/index.ts';
import { type CredentialsService, type ResolvedCredential, secretsOf } from '../credentials/index.ts';
import type { JobsService } from '../jobs/index.ts';
import type { RunsService } from '../runs/index.ts';
import { type TargetConnector, type TargetsService, type TargetWithGroups, tlsReport } from '../targets/index.ts';
import type { ExecuteSftpBody, ExecuteSshBody, ExecuteWebhookBody, ExecuteWinrmBody } from './executor.schemas.ts';

/** Default overall bound of POST /libraries/{id}/steps/{step}/execute, whatever the number of items. */
const LIBRARY_EXECUTE_TIMEOUT_S = 300;

/** One implementation item of a library step rendered against its parameters and the target (400 when a template fails). */
function renderLibraryItem(templates: TemplateEngine, step: Record<string, unknown>, target: TargetWithGroups): Record<string, unknown> {
  try {
    return renderStep(templates, step, { target: targetView(target) });
  } catch (e) {
    throw new ValidationError(`parameters: ${(e as Error).message.split('\n')[0]}`, 'parameters');
  }
}

/** Builds the executor service. */
export function createExecutorService(deps: {
  runs: RunsService;
  jobs: JobsService;
  targets: TargetsService;
  connector: TargetConnector;
  credentials: CredentialsService;
  audit: AuditService;
  filesRoot: string;
  maxOutputBytes: number;
  templates: TemplateEngine;
}) {
  const { runs, jobs, targets, connector, credentials, audit } = deps;

  /** Runs one step synchronously on `targetId` with its credential (or `credentialId`). */
  async function runNow(targetId: number, credentialId: number | undefined, step: Record<string, unknown>, extraSecrets: string[] = []): Promise<{ outcome: StepOutcome; mask: (t: string) => string; ms: number }> {
    const [target] = await targets.getMany([targetId], 'target_id');
    const id = credentialId ?? target?.credential_id ?? undefined;
    if (id === undefined) {
      throw new ValidationError('credential_id: the target has no credential; give one', 'credential_id');
    }
    const credential: ResolvedCredential = await credentials.resolve(id);
    const mask = createMasker([...secretsOf(credential), ...extraSecrets]);
    let connection: Promise<SshConnection> | undefined;
    const env: StepEnv = {
      target: target as TargetWithGroups,
      connection: () => (connection ??= connector.openSsh(target as TargetWithGroups, credential)),
      winrm: () => connector.winrmOptions(target as TargetWithGroups, credential),
      resolveCredential: (cid) => credentials.resolve(cid),
      filesRoot: deps.filesRoot,
      signal: new AbortController().signal,
      maxOutputBytes: deps.maxOutputBytes,
      onOutput: () => {},
    };
    const started = performance.now();
    try {
      const outcome = await runStep({ timeout_s: 300, ...step }, env);
      return { outcome, mask, ms: Math.round(performance.now() - started) };
    } finally {
      void connection?.then((c) => c.close()).catch(() => {});
    }
  }

  return {
    /** Queues steps on one target; returns the run id behind `exec_<id>`. */
    async execute(actor: Actor, input: { targetId: number; steps: Array<Record<string, unknown>>; jobRunId?: number }): Promise<number> {
      if (input.jobRunId !== undefined) {
        await runs.getRun(input.jobRunId);
      }
      const steps = await jobs.prepareSteps(input.steps, {});
      return runs.queueAdhoc({ steps, targetId: input.targetId, actor });
    },

    async getExecution(id: number) {
      const run = await runs.getRun(id);
      if (run.job_id !== null || run.trigger !== 'api') {
        throw new NotFoundError(`Execution exec_${id} not found`);
      }
      const steps = await runs.runSteps(id);
      const last = [...steps].reverse().find((s) => s.exit_code !== null);
      return { run, steps, output: steps.map((s) => s.stdout).join(''), exitCode: last?.exit_code ?? null };
    },

    async ssh(actor: Actor, input: ExecuteSshBody) {
      const [target] = await targets.getMany([input.target_id], 'target_id');
      if (target?.protocol !== 'ssh') {
        const error = `protocol_not_supported: the target is a ${target?.protocol ?? 'unknown'} target${target?.protocol === 'winrm' ? '; use /execute/winrm' : ''}`;
        return { success: false, output: '', stderr: '', exit_code: null, execution_time_ms: 0, error };
      }
      const { outcome, mask, ms } = await runNow(input.target_id, input.credential_id, { type: 'command', command: input.command, timeout_s: input.timeout_s ?? 60 });
      await audit.record(actor, 'execute.ssh', { type: 'target', id: input.target_id }, { exit_code: outcome.exitCode, status: outcome.status });
      const output = capOutput(mask(outcome.stdout), deps.maxOutputBytes).text;
      const stderr = capOutput(mask(outcome.stderr), deps.maxOutputBytes).text;
      return { success: outcome.status === 'succeeded', output, stderr, exit_code: outcome.exitCode, execution_time_ms: ms, ...(outcome.error ? { error: mask(outcome.error) } : {}) };
    },

    async winrm(actor: Actor, input: ExecuteWinrmBody) {
      const [target] = await targets.getMany([input.target_id], 'target_id');
      if (target?.protocol !== 'winrm') {
        throw new ValidationError('target_id: the target is not a winrm target', 'target_id');
      }
      const step = { type: 'command', command: input.command, shell: input.shell ?? 'powershell', timeout_s: input.timeout_s ?? 60 };
      const { outcome, mask, ms } = await runNow(input.target_id, input.credential_id, step);
      await audit.record(actor, 'execute.winrm', { type: 'target', id: input.target_id }, { exit_code: outcome.exitCode, status: outcome.status });
      const output = capOutput(mask(outcome.stdout), deps.maxOutputBytes).text;
      const stderr = capOutput(mask(outcome.stderr), deps.maxOutputBytes).text;
      const reply = { success: outcome.status === 'succeeded', output, stderr, exit_code: outcome.exitCode, execution_time_ms: ms, ...tlsReport(target) };
      return { ...reply, ...(outcome.error ? { error: mask(outcome.error) } : {}) };
    },

    async sftp(actor: Actor, input: ExecuteSftpBody) {
      try {
        resolveInside(deps.filesRoot, input.local_path);
      } catch (e) {
        throw new ValidationError(`local_path: ${(e as Error).message}`, 'local_path');
      }
      const { outcome, mask, ms } = await runNow(input.target_id, input.credential_id, { type: 'sftp', operation: input.operation, local_path: input.local_path, remote_path: input.remote_path });
      await audit.record(actor, 'execute.sftp', { type: 'target', id: input.target_id }, { operation: input.operation, status: outcome.status });
      return {
        success: outcome.status === 'succeeded',
        bytes_transferred: Number(outcome.outputs?.bytes ?? 0),
        transfer_time_ms: ms,
        ...(outcome.error ? { error: mask(outcome.error) } : {}),
      };
    },

    /**
     * Runs a library step's implementation steps in order on one target, rendered against the
     * given parameters and the target; stops at the first failure. Outputs are merged. The target
     * must be of a platform the step declares (400 naming target_id); `timeoutS` bounds the whole
     * call, not each item: each item gets at most what is left of it.
     */
    async runLibrarySteps(actor: Actor, input: { targetId: number; credentialId?: number; steps: Array<Record<string, unknown>>; libraryId: string; stepName: string; timeoutS?: number }) {
      const [target] = await targets.getMany([input.targetId], 'target_id');
      checkRunPlatforms(input.steps, [target as TargetWithGroups], 'target_id');
      const started = performance.now();
      const timeoutS = input.timeoutS ?? LIBRARY_EXECUTE_TIMEOUT_S;
      const deadline = started + timeoutS * 1000;
      let last: StepOutcome | undefined;
      let mask = (t: string) => t;
      const stdout: string[] = [];
      const stderr: string[] = [];
      const outputs: Record<string, string> = {};
      for (const step of input.steps) {
        const left = Math.ceil((deadline - performance.now()) / 1000);
        if (left <= 0) {
          last = { status: 'timed_out', exitCode: null, stdout: '', stderr: '', error: `the step did not finish within ${timeoutS} s` };
          break;
        }
        const rendered = renderLibraryItem(deps.templates, step, target as TargetWithGroups);
        const secretValues = ((step.secret_params as string[] | undefined) ?? []).map((n) => String((rendered.params as Record<string, unknown>)[n] ?? '')).filter(Boolean);
        const run = await runNow(input.targetId, input.credentialId, { ...rendered, timeout_s: Math.min(Number(rendered.timeout_s ?? left), left) }, secretValues);
        mask = run.mask;
        last = run.outcome;
        stdout.push(run.outcome.stdout);
        stderr.push(run.outcome.stderr);
        Object.assign(outputs, parseOutputs(run.outcome.stdout), run.outcome.outputs);
        if (run.outcome.status !== 'succeeded') {
          break;
        }
      }
      const ms = Math.round(performance.now() - started);
      await audit.record(actor, 'library.execute', { type: 'library', id: input.libraryId }, { step: input.stepName, target_id: input.targetId, status: last?.status ?? 'failed' });
      const cap = (t: string) => capOutput(mask(t), deps.maxOutputBytes).text;
      const result = { status: last?.status ?? 'failed', exit_code: last?.exitCode ?? null, stdout: cap(stdout.join('')), stderr: cap(stderr.join('')), outputs: Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, mask(v)])), ...(last?.error ? { error: mask(last.error) } : {}) };
      return { result, execution_time_ms: ms };
    },

    async webhook(actor: Actor, input: ExecuteWebhookBody) {
      const step = { type: 'webhook', url: input.url, method: input.method ?? 'POST', payload: input.payload, headers: input.headers, timeout_s: input.timeout_s ?? 30 };
      const env = { signal: new AbortController().signal, maxOutputBytes: deps.maxOutputBytes, onOutput: () => {} } as unknown as StepEnv;
      const started = performance.now();
      const outcome = await runStep(step, env);
      const ms = Math.round(performance.now() - started);
      await audit.record(actor, 'execute.webhook', { type: 'url', id: new URL(input.url).host }, { status_code: outcome.outputs?.status_code ?? null });
      let response: unknown = outcome.stdout;
      try {
        response = JSON.parse(outcome.stdout);
      } catch {
        // not JSON: keep the text
      }
      const statusCode = outcome.outputs?.status_code ? Number(outcome.outputs.status_code) : null;
      return { status_code: statusCode, response, response_time_ms: ms, ...(statusCode === null && outcome.error ? { error: outcome.error } : {}) };
    },
  };
}

/** The executor service. */
export type ExecutorService = ReturnType<typeof createExecutorService>;
