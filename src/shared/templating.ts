/**
 * Liquid templates for step fields. Strict: unknown variables and filters are errors, only own
 * properties are reachable (no prototype, no JavaScript), and templates can be analysed before a
 * run to report the variables they use.
 */
import { Liquid } from 'liquidjs';

/** One templating engine; create once per process. */
export type TemplateEngine = ReturnType<typeof createTemplateEngine>;

/** Builds the strict engine. */
export function createTemplateEngine() {
  const liquid = new Liquid({ strictVariables: true, strictFilters: true, ownPropertyOnly: true, cache: 1000 });
  return {
    /** The variable paths a template reads (e.g. `['params', 'x']`); throws on a syntax error. */
    variables(template: string): Array<Array<string | number>> {
      return liquid.globalVariableSegmentsSync(liquid.parse(template)) as Array<Array<string | number>>;
    },
    /** Renders `template` with `context`; throws on unknown variables or filters. */
    render(template: string, context: Record<string, unknown>): string {
      return liquid.parseAndRenderSync(template, context) as string;
    },
    /** True when a string contains template syntax at all (fast path for plain strings). */
    isTemplate: (text: string) => text.includes('{{') || text.includes('{%'),
  };
}
