/**
 * Job definitions: validated whole on every save (step shapes, parameter declarations, templates,
 * credential references, file-store paths) so that a saved job can only fail at run time for
 * reasons that depend on the run. Every change audited.
 */
import type { Db, JobRow } from '../../db/schema.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import { resolveInside, UnsafePathError } from '../../shared/safe-path.ts';
import type { TemplateEngine } from '../../shared/templating.ts';
import type { AuditService } from '../audit/index.ts';
import type { CredentialsService } from '../credentials/index.ts';
import { checkDeclarations, type ParameterDeclarations } from './jobs.params.ts';
import type { JobsRepo, JobWrite } from './jobs.repo.ts';
import type { JobCreateBody, JobUpdateBody } from './jobs.schemas.ts';
import { normalizeSteps, type Step } from './jobs.steps.ts';
import { checkTemplates } from './jobs.templates.ts';

/** Builds the jobs service. */
export function createJobsService(deps: {
  db: Db;
  repo: JobsRepo;
  credentials: CredentialsService;
  audit: AuditService;
  clock: Clock;
  templates: TemplateEngine;
  /** Checks a notification destination (`notify` entries and notify steps); throws a 400 naming `field`. */
  checkNotifyDestination: (d: { channel: string; destination: string; template_id?: number; secret_credential_id?: number }, field: string) => Promise<void>;
  /** Checks a library step against the installed library; throws a 400 naming `field`.*. */
  checkLibraryStep: (step: Record<string, unknown> & { name: string }, field: string) => Promise<void>;
  /** Checks the job's schedules still fit new parameter declarations; throws a 400 naming `parameters`. */
  checkSchedules?: (jobId: number, declarations: ParameterDeclarations) => Promise<void>;
}) {
  const { db, repo, credentials, audit, clock, templates } = deps;

  async function getRow(id: number): Promise<JobRow> {
    const row = await repo.findById(id);
    if (!row) {
      throw new NotFoundError(`Job ${id} not found`);
    }
    return row;
  }

  async function checkReferences(steps: readonly Step[]): Promise<void> {
    for (const [index, step] of steps.entries()) {
      if (step.type === 'http' && typeof step.credential_id === 'number') {
        const type = await credentials.typeOf(step.credential_id, `steps[${index}].credential_id`);
        if (!['api_token', 'password'].includes(type)) {
          throw new ValidationError(`steps[${index}].credential_id: an http step authenticates with an api_token or password credential`, `steps[${index}].credential_id`);
        }
      }
      if (step.type === 'webhook' && typeof step.secret_credential_id === 'number') {
        if ((await credentials.typeOf(step.secret_credential_id, `steps[${index}].secret_credential_id`)) !== 'api_token') {
          throw new ValidationError(`steps[${index}].secret_credential_id: webhooks are signed with an api_token credential`, `steps[${index}].secret_credential_id`);
        }
      }
      if (step.type === 'library') {
        await deps.checkLibraryStep(step, `steps[${index}]`);
      }
      if (step.type === 'notify') {
        const d = step as unknown as { channel: string; destination: string; template_id?: number; secret_credential_id?: number };
        await deps.checkNotifyDestination(templates.isTemplate(d.destination) ? { ...d, destination: d.channel === 'email' ? 'templated@example.invalid' : 'https://templated.invalid/' } : d, `steps[${index}]`);
      }
      if (step.type === 'sftp' && !templates.isTemplate(String(step.local_path))) {
        try {
          resolveInside('/files', String(step.local_path));
        } catch (e) {
          if (e instanceof UnsafePathError) {
            throw new ValidationError(`steps[${index}].local_path: ${e.message}`, `steps[${index}].local_path`);
          }
          throw e;
        }
      }
    }
  }

  /** Validates steps (shapes, templates against `parameters`, references) and applies defaults. */
  async function prepareSteps(raw: Array<Record<string, unknown>>, parameters: ParameterDeclarations): Promise<Step[]> {
    const steps = normalizeSteps(raw);
    checkTemplates(templates, steps, parameters);
    await checkReferences(steps);
    return steps;
  }

  /** Every destination of a job's `notify`, checked; null when empty. */
  async function checkNotify(notify: JobCreateBody['notify']): Promise<JobWrite['notify']> {
    if (!notify) {
      return null;
    }
    for (const [key, list] of Object.entries(notify)) {
      for (const [i, d] of (list ?? []).entries()) {
        await deps.checkNotifyDestination(d, `notify.${key}[${i}]`);
      }
    }
    return notify;
  }

  /** Validates a complete definition and returns what to store. */
  async function prepare(input: Required<Pick<JobCreateBody, 'name' | 'steps'>> & JobUpdateBody, current?: JobRow): Promise<JobWrite> {
    const parameters = (input.parameters ?? current?.parameters ?? {}) as ParameterDeclarations;
    checkDeclarations(parameters);
    const steps = await prepareSteps(input.steps as Array<Record<string, unknown>>, parameters);
    return {
      name: input.name,
      description: input.description ?? current?.description ?? '',
      status: input.status ?? current?.status ?? 'active',
      steps,
      parameters,
      concurrency: input.concurrency ?? current?.concurrency ?? 50,
      allow_concurrent_runs: input.allow_concurrent_runs ?? current?.allow_concurrent_runs ?? false,
      timeout_s: input.timeout_s ?? current?.timeout_s ?? 3600,
      notify: input.notify !== undefined ? await checkNotify(input.notify) : (current?.notify ?? null),
    };
  }

  return {
    prepareSteps,

    list: (_actor: Actor, q: { page: number; limit: number; status?: string; createdBy?: number; search?: string }) =>
      repo.list({ status: q.status, createdBy: q.createdBy, search: q.search, offset: (q.page - 1) * q.limit, limit: q.limit }),

    get: (_actor: Actor, id: number) => getRow(id),

    async create(actor: Actor, input: JobCreateBody): Promise<JobRow> {
      const write = await prepare(input);
      return db.transaction().execute(async (tx) => {
        const row = await repo.insert(write, actor.id, tx);
        await audit.record(actor, 'job.create', { type: 'job', id: row.id }, { name: row.name, steps: write.steps.length }, tx);
        return row;
      });
    },

    async update(actor: Actor, id: number, input: JobUpdateBody): Promise<JobRow> {
      const current = await getRow(id);
      const write = await prepare({ ...input, name: input.name ?? current.name, steps: input.steps ?? (current.steps as JobCreateBody['steps']) }, current);
      if (input.parameters !== undefined) {
        await deps.checkSchedules?.(id, write.parameters as ParameterDeclarations);
      }
      return db.transaction().execute(async (tx) => {
        const row = await repo.update(id, write, clock.now(), tx);
        if (!row) {
          throw new NotFoundError(`Job ${id} not found`);
        }
        await audit.record(actor, 'job.update', { type: 'job', id }, { fields: Object.keys(input).sort() }, tx);
        return row;
      });
    },

    async remove(actor: Actor, id: number): Promise<void> {
      const current = await getRow(id);
      await db.transaction().execute(async (tx) => {
        await repo.delete(id, tx);
        await audit.record(actor, 'job.delete', { type: 'job', id }, { name: current.name }, tx);
      });
    },
  };
}

/** The jobs service. */
export type JobsService = ReturnType<typeof createJobsService>;
