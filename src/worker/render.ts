/**
 * Steps rendered for running: every string of a step is a template over the run's context
 * (params, target, job, run, earlier steps). Shared by the worker and `POST /execute/*`.
 */
import type { TargetWithGroups } from '../modules/targets/index.ts';
import type { TemplateEngine } from '../shared/templating.ts';

/**
 * A step rendered for running. A library step's implementation (it carries `template_params`)
 * sees only `params` — its own parameters, rendered against the run first — and `target`.
 */
export function renderStep(templates: TemplateEngine, step: Record<string, unknown>, context: Record<string, unknown>): Record<string, unknown> {
  if (step.template_params === undefined) {
    return renderDeep(templates, step, context) as Record<string, unknown>;
  }
  const { template_params: raw, ...rest } = step;
  const params = renderDeep(templates, raw, context) as Record<string, unknown>;
  return { ...(renderDeep(templates, rest, { params, target: context.target }) as Record<string, unknown>), params };
}

/** Renders every string inside `value`. */
function renderDeep(templates: TemplateEngine, value: unknown, context: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    return templates.isTemplate(value) ? templates.render(value, context) : value;
  }
  if (Array.isArray(value)) {
    return value.map((v) => renderDeep(templates, v, context));
  }
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(templates, v, context)]));
  }
  return value;
}

/** What templates see of a target. */
export function targetView(target: TargetWithGroups | null) {
  return target && { id: target.id, name: target.name, host: target.host, port: target.port, os_type: target.os_type, protocol: target.protocol, tags: target.tags };
}
