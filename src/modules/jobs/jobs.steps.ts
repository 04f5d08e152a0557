/**
 * Step definitions: one schema per step type, checked one step at a time so errors name the
 * exact field (`steps[2].command`), plus defaults and unique step names.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { Compile } from 'typebox/compile';

import { ValidationError } from '../../errors.ts';
import { validationFailure } from '../../http/error-handler.ts';
import { StringEnum } from '../../http/schemas.ts';

/** Step types. (`script` is what a library step becomes in a run, never written in a job.) */
export const STEP_TYPES = ['command', 'sftp', 'http', 'webhook', 'notify', 'library'] as const;
export type StepType = (typeof STEP_TYPES)[number];

const common = {
  type: Type.String(),
  name: Type.Optional(Type.String({ pattern: '^[a-z0-9_]{1,64}$', description: 'Unique within the job; default step_<index>' })),
  timeout_s: Type.Optional(Type.Integer({ minimum: 1, maximum: 86400, description: 'Default 300' })),
  continue_on_error: Type.Optional(Type.Boolean({ description: 'Go on with the next step when this one fails' })),
  retries: Type.Optional(Type.Integer({ minimum: 0, maximum: 10 })),
  when: Type.Optional(Type.String({ maxLength: 4096, description: 'Template; the step is skipped when it renders to "", false, 0 or no' })),
};
const Url = Type.String({ minLength: 1, maxLength: 8192, description: 'http(s) URL (template)' });
const Headers = Type.Record(Type.String({ pattern: '^[A-Za-z0-9!#$%&\'*+.^_`|~-]{1,128}$' }), Type.String({ maxLength: 8192 }), { additionalProperties: false });
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const CredentialRef = Type.Integer({ minimum: 1, maximum: 2147483647 });

const STEP_SCHEMAS: Record<StepType, TSchema> = {
  command: Type.Object(
    {
      ...common,
      command: Type.String({ minLength: 1, maxLength: 65536 }),
      shell: Type.Optional(StringEnum(['sh', 'bash', 'powershell', 'cmd'] as const, { description: 'Default sh over SSH, powershell over WinRM' })),
    },
    { additionalProperties: false },
  ),
  sftp: Type.Object(
    {
      ...common,
      operation: StringEnum(['upload', 'download'] as const),
      local_path: Type.String({ minLength: 1, maxLength: 1024, description: 'Relative path inside the file store' }),
      remote_path: Type.String({ minLength: 1, maxLength: 4096 }),
    },
    { additionalProperties: false },
  ),
  http: Type.Object(
    {
      ...common,
      method: StringEnum(HTTP_METHODS),
      url: Url,
      headers: Type.Optional(Headers),
      body: Type.Optional(Type.Unknown()),
      expect_status: Type.Optional(Type.Array(Type.Integer({ minimum: 100, maximum: 599 }), { minItems: 1, maxItems: 50 })),
      credential_id: Type.Optional(CredentialRef),
      auth: Type.Optional(StringEnum(['bearer', 'basic'] as const)),
    },
    { additionalProperties: false },
  ),
  webhook: Type.Object(
    {
      ...common,
      url: Url,
      method: Type.Optional(StringEnum(HTTP_METHODS)),
      payload: Type.Optional(Type.Unknown()),
      headers: Type.Optional(Headers),
      secret_credential_id: Type.Optional(CredentialRef),
    },
    { additionalProperties: false },
  ),
  library: Type.Object(
    {
      ...common,
      library: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{1,63}$', description: 'Installed library id' }),
      step: Type.String({ pattern: '^[a-z][a-z0-9_]{0,63}$', description: 'Step of the library' }),
      parameters: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'Values for the step’s parameters (templates allowed)' })),
    },
    { additionalProperties: false },
  ),
  notify: Type.Object(
    {
      ...common,
      channel: StringEnum(['email', 'slack', 'teams', 'webhook'] as const),
      destination: Type.String({ minLength: 1, maxLength: 2048, description: 'Email address or webhook URL (template)' }),
      template_id: Type.Optional(CredentialRef),
      subject: Type.Optional(Type.String({ maxLength: 1000, description: 'Template' })),
      message: Type.Optional(Type.String({ maxLength: 100_000, description: 'Template' })),
      secret_credential_id: Type.Optional(CredentialRef),
    },
    { additionalProperties: false },
  ),
};
const CHECKS = Object.fromEntries(Object.entries(STEP_SCHEMAS).map(([type, schema]) => [type, Compile(schema)])) as Record<StepType, ReturnType<typeof Compile>>;

/** A step as stored (defaults applied, name always set). */
export type Step = {
  type: StepType;
  name: string;
  timeout_s: number;
  continue_on_error: boolean;
  retries: number;
  when?: string;
} & Record<string, unknown>;

/** The loose shape the job body accepts; each step is checked by {@link normalizeSteps}. */
export const StepInput = Type.Object({ type: StringEnum(STEP_TYPES) }, { additionalProperties: true });
export type StepInput = Static<typeof StepInput>;

/** Validates every step against its type's schema, applies defaults, checks name uniqueness. */
export function normalizeSteps(steps: readonly Record<string, unknown>[]): Step[] {
  const seen = new Set<string>();
  return steps.map((raw, index) => {
    const prefix = `steps[${index}]`;
    const type = raw.type as string;
    const check = CHECKS[type as StepType];
    if (!check.Check(raw)) {
      const failure = validationFailure(check.Errors(raw), prefix);
      const field = failure.field === prefix ? prefix : `${prefix}.${failure.field}`;
      throw new ValidationError(`${field}: ${failure.message.slice((failure.field ?? '').length).trim()}`, field);
    }
    const name = (raw.name as string | undefined) ?? `step_${index}`;
    if (seen.has(name)) {
      throw new ValidationError(`${prefix}.name: "${name}" is used by an earlier step`, `${prefix}.name`);
    }
    seen.add(name);
    return { ...raw, type: type as StepType, name, timeout_s: (raw.timeout_s as number) ?? 300, continue_on_error: (raw.continue_on_error as boolean) ?? false, retries: (raw.retries as number) ?? 0 };
  });
}

/** True when a job needs targets (commands, file transfers and library steps that are not all HTTP run on machines). */
export function needsTargets(steps: readonly Step[]): boolean {
  return steps.some((s) => ['command', 'sftp', 'script'].includes(s.type as string));
}
