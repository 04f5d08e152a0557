/**
 * Liquid templates for step fields. Strict: unknown variables and filters are errors, only own
 * properties are reachable (no prototype, no JavaScript), and templates can be analysed before a
 * run to report the variables they use.
 */
import { Liquid } from 'liquidjs';

/** Tags that read partials or layouts from disk: never allowed in step templates. */
const FILE_TAGS = /\{%-?\s*(include|render|layout)\b/;

/** A file system with no files: templates can never read the server's disk. */
const NO_FILES = {
  exists: async () => false,
  existsSync: () => false,
  readFile: async (file: string): Promise<string> => {
    throw new Error(`templates cannot read files (${file})`);
  },
  readFileSync: (file: string): string => {
    throw new Error(`templates cannot read files (${file})`);
  },
  resolve: (_root: string, file: string) => file,
  dirname: (file: string) => file,
  sep: '/',
};

/** True when a string contains template syntax at all (fast path for plain strings). */
export function isTemplate(text: string): boolean {
  return text.includes('{{') || text.includes('{%');
}

/** One templating engine; create once per process. */
export type TemplateEngine = ReturnType<typeof createTemplateEngine>;

/** Builds the strict engine. */
export function createTemplateEngine() {
  const liquid = new Liquid({ strictVariables: true, strictFilters: true, ownPropertyOnly: true, cache: 1000, fs: NO_FILES, root: [], partials: [], layouts: [], relativeReference: false });
  return {
    /** The variable paths a template reads (e.g. `['params', 'x']`); throws on a syntax error. */
    variables(template: string): Array<Array<string | number>> {
      if (FILE_TAGS.test(template)) {
        throw new Error('include, render and layout are not allowed in step templates');
      }
      return liquid.globalVariableSegmentsSync(liquid.parse(template)) as Array<Array<string | number>>;
    },
    /** Renders `template` with `context`; throws on unknown variables or filters. */
    render(template: string, context: Record<string, unknown>): string {
      if (FILE_TAGS.test(template)) {
        throw new Error('include, render and layout are not allowed in step templates');
      }
      return liquid.parseAndRenderSync(template, context) as string;
    },
    /** True when a string contains template syntax at all (see {@link isTemplate}). */
    isTemplate,
  };
}
