/**
 * Library steps in jobs: `{type: library, library, step, parameters}` checked against the
 * installed manifest when a job is saved, and expanded when a run is queued into the step types
 * the executor runs (command, script, http) — frozen into the run, so an upgrade later does not
 * change it. Implementations render against `params` (the library step's parameters, themselves
 * rendered against the run first) and `target` only.
 */
import { ValidationError } from '../../errors.ts';
import { isTemplate } from '../../shared/templating.ts';

/** One parameter of a library step. */
export interface LibraryParameter {
  type: 'string' | 'number' | 'integer' | 'boolean';
  required?: boolean;
  default?: string | number | boolean;
  description?: string;
  enum?: Array<string | number | boolean>;
  secret?: boolean;
}

/** One implementation item. */
export type Implementation =
  | { type: 'command'; shell?: string; command: string }
  | { type: 'script'; shell?: string; file: string; args?: string[] }
  | { type: 'http'; method: string; url: string; headers?: Record<string, string>; body?: unknown; expect_status?: number[] };

/** A step as a manifest declares it. */
export interface ManifestStep {
  name: string;
  display_name?: string;
  description?: string;
  category?: string;
  platforms: string[];
  parameters?: Record<string, LibraryParameter>;
  implementation: Implementation | Implementation[];
}

/** An installed version, as expansion needs it. */
export interface VersionContent {
  library_id: string;
  version: string;
  manifest: { steps: ManifestStep[] };
  files: Record<string, string>;
}

function typeOk(value: unknown, type: LibraryParameter['type']): boolean {
  switch (type) {
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeof value === type;
  }
}

/** The step `name` of a version; a 400 naming `field` when it has none. */
export function findStep(version: VersionContent, name: string, field: string): ManifestStep {
  const step = version.manifest.steps.find((s) => s.name === name);
  if (!step) {
    throw new ValidationError(`${field}: library ${version.library_id} ${version.version} has no step "${name}" (it has ${version.manifest.steps.map((s) => s.name).join(', ')})`, field);
  }
  return step;
}

/**
 * `values` checked against the step's parameters (unknown, missing required, wrong type, not in
 * enum → 400 naming `<field>.<name>`) with defaults merged. Templated values are checked when the
 * run renders them, so they pass here.
 */
export function checkValues(step: ManifestStep, values: Record<string, unknown>, field: string): Record<string, unknown> {
  const declared = step.parameters ?? {};
  for (const name of Object.keys(values)) {
    if (!Object.hasOwn(declared, name)) {
      throw new ValidationError(`${field}.${name}: step ${step.name} has no parameter "${name}" (it has ${Object.keys(declared).join(', ') || 'none'})`, `${field}.${name}`);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [name, decl] of Object.entries(declared)) {
    const value = values[name] ?? decl.default;
    if (value === undefined) {
      if (decl.required) {
        throw new ValidationError(`${field}.${name} is required`, `${field}.${name}`);
      }
      continue;
    }
    if (!(typeof value === 'string' && isTemplate(value))) {
      if (!typeOk(value, decl.type)) {
        throw new ValidationError(`${field}.${name} must be ${decl.type === 'integer' ? 'an integer' : `a ${decl.type}`}`, `${field}.${name}`);
      }
      if (decl.enum && !decl.enum.includes(value as string)) {
        throw new ValidationError(`${field}.${name} must be one of ${decl.enum.join(', ')}`, `${field}.${name}`);
      }
    }
    out[name] = value;
  }
  return out;
}

/** The steps a library step runs as, for the executor. */
export function expandStep(version: VersionContent, jobStep: Record<string, unknown> & { name: string }, field = 'step'): Array<Record<string, unknown>> {
  const step = findStep(version, String(jobStep.step), `${field}.step`);
  const values = checkValues(step, (jobStep.parameters as Record<string, unknown> | undefined) ?? {}, `${field}.parameters`);
  const items = Array.isArray(step.implementation) ? step.implementation : [step.implementation];
  const secrets = Object.entries(step.parameters ?? {})
    .filter(([, d]) => d.secret)
    .map(([n]) => n);
  const base = { timeout_s: jobStep.timeout_s, continue_on_error: jobStep.continue_on_error, retries: jobStep.retries, ...(jobStep.when !== undefined ? { when: jobStep.when } : {}) };
  // platforms travel with the run, so the targets it is queued on can be checked against them.
  const library = { id: version.library_id, version: version.version, step: step.name, platforms: step.platforms };
  return items.map((item, i) => {
    const name = items.length === 1 ? jobStep.name : `${jobStep.name}__${i + 1}`;
    const common = { ...base, name, library, template_params: values, ...(secrets.length > 0 ? { secret_params: secrets } : {}) };
    if (item.type === 'script') {
      const content = version.files[item.file];
      if (content === undefined) {
        throw new ValidationError(`${field}.step: ${version.library_id} ${version.version} lacks ${item.file}`, `${field}.step`);
      }
      return { ...common, type: 'script', shell: item.shell ?? 'sh', file: item.file, ...(item.args ? { args: item.args } : {}), content };
    }
    return { ...common, ...item };
  });
}
