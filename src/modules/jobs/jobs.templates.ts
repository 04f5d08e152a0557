/**
 * Static checks of a job's templates at save time: syntax, and every variable must be one a run
 * will have — a declared param, a target field, the job or run, or an earlier step's results.
 */
import { ValidationError } from '../../errors.ts';
import type { TemplateEngine } from '../../shared/templating.ts';
import type { ParameterDeclarations } from './jobs.params.ts';
import type { Step } from './jobs.steps.ts';

const TARGET_FIELDS = new Set(['id', 'name', 'host', 'port', 'os_type', 'tags']);
const JOB_FIELDS = new Set(['id', 'name']);
const RUN_FIELDS = new Set(['id', 'trigger']);
const STEP_RESULT_FIELDS = new Set(['stdout', 'stderr', 'exit_code', 'outputs', 'status']);
/** Step keys that are configuration, not templates. */
const NOT_TEMPLATED = new Set(['type', 'name', 'timeout_s', 'continue_on_error', 'retries', 'expect_status', 'credential_id', 'secret_credential_id', 'operation', 'method', 'auth', 'shell']);

/** Every string inside `value` with its path below `prefix`. */
function strings(value: unknown, prefix: string): Array<[string, string]> {
  if (typeof value === 'string') {
    return [[prefix, value]];
  }
  if (Array.isArray(value)) {
    return value.flatMap((v, i) => strings(v, `${prefix}[${i}]`));
  }
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => strings(v, `${prefix}.${k}`));
  }
  return [];
}

function checkVariable(path: Array<string | number>, index: number, steps: readonly Step[], params: ParameterDeclarations): string | undefined {
  const [root, first, second] = path;
  const shown = path.join('.');
  switch (root) {
    case 'params':
      return first === undefined || (typeof first === 'string' && first in params) ? undefined : `${shown}: parameter "${String(first)}" is not declared`;
    case 'target':
      return first === undefined || TARGET_FIELDS.has(String(first)) ? undefined : `${shown}: targets have ${[...TARGET_FIELDS].join(', ')}`;
    case 'job':
      return first === undefined || JOB_FIELDS.has(String(first)) ? undefined : `${shown}: jobs have ${[...JOB_FIELDS].join(', ')}`;
    case 'run':
      return first === undefined || RUN_FIELDS.has(String(first)) ? undefined : `${shown}: runs have ${[...RUN_FIELDS].join(', ')}`;
    case 'steps': {
      const earlier = typeof first === 'number' ? first < index : steps.slice(0, index).some((s) => s.name === first);
      if (first !== undefined && !earlier) {
        return `${shown}: only earlier steps can be referenced`;
      }
      return second === undefined || STEP_RESULT_FIELDS.has(String(second)) ? undefined : `${shown}: step results have ${[...STEP_RESULT_FIELDS].join(', ')}`;
    }
    default:
      return `${shown}: unknown variable (use params, target, job, run or steps)`;
  }
}

/** Throws a ValidationError naming the first templated field that cannot work. */
export function checkTemplates(engine: TemplateEngine, steps: readonly Step[], params: ParameterDeclarations): void {
  steps.forEach((step, index) => {
    for (const [key, value] of Object.entries(step)) {
      if (NOT_TEMPLATED.has(key)) {
        continue;
      }
      for (const [field, text] of strings(value, `steps[${index}].${key}`)) {
        if (!engine.isTemplate(text)) {
          continue;
        }
        let variables: Array<Array<string | number>>;
        try {
          variables = engine.variables(text);
        } catch (e) {
          throw new ValidationError(`${field}: template error: ${(e as Error).message.split('\n')[0]}`, field);
        }
        for (const path of variables) {
          const problem = checkVariable(path, index, steps, params);
          if (problem) {
            throw new ValidationError(`${field}: ${problem}`, field);
          }
        }
      }
    }
  });
}
