/**
 * Library manifests: the typed shape, validation against manifest.schema.json (every problem
 * reported as a JSON pointer and a message), and the rules a schema cannot state — unique step
 * names, defaults and enum values that fit their parameter's type, valid dependency ranges and
 * canonical script paths. Whether script files exist is the bundle reader's check.
 */
import { Ajv, type ErrorObject } from 'ajv';
import * as ajvFormats from 'ajv-formats';

import { pathProblem } from './archive.ts';
import { BundleError, type BundleIssue } from './bundle-error.ts';
import schema from './manifest.schema.json' with { type: 'json' };
import { isValidRange } from './semver.ts';

/** Where a step can run. */
export const PLATFORMS = ['linux', 'windows', 'any'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Parameter value types. */
export const PARAMETER_TYPES = ['string', 'number', 'boolean', 'integer'] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];

/** One parameter a step takes. */
export interface LibraryParameter {
  type: ParameterType;
  /** Whether a job must give a value (when there is no default). */
  required?: boolean;
  default?: string | number | boolean;
  description: string;
  /** The only values allowed. */
  enum?: Array<string | number | boolean>;
  /** Masked as *** in run details, output and logs. */
  secret?: boolean;
}

/** Runs a (Liquid-templated) command line. */
export interface CommandImplementation {
  type: 'command';
  shell?: 'sh' | 'bash' | 'powershell' | 'cmd';
  command: string;
}

/** Uploads a bundled script to a temporary path on the target, runs it and removes it. */
export interface ScriptImplementation {
  type: 'script';
  shell?: 'sh' | 'bash' | 'powershell' | 'cmd' | 'python3';
  /** Canonical relative path of the script in the bundle (a key of the bundle's `files`). */
  file: string;
  /** Literal arguments after the script path, each passed as one quoted word (not templates). */
  args?: string[];
}

/** Sends an HTTP request (URL, headers and string values of the body are templates). */
export interface HttpImplementation {
  type: 'http';
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
  expect_status?: number[];
}

/** One item of a step's implementation. */
export type StepImplementation = CommandImplementation | ScriptImplementation | HttpImplementation;

/** One step a library offers. */
export interface LibraryStep {
  name: string;
  display_name: string;
  description: string;
  category: string;
  platforms: Platform[];
  parameters: Record<string, LibraryParameter>;
  /** One item, or up to 20 run in order. */
  implementation: StepImplementation | StepImplementation[];
}

/** manifest.json of a library bundle. */
export interface LibraryManifest {
  $schema?: string;
  id: string;
  name: string;
  version: string;
  description: string;
  author: string;
  license: string;
  homepage?: string;
  min_opsconductor_version?: string;
  /** libraryId → semver range. */
  dependencies?: Record<string, string>;
  steps: LibraryStep[];
}

type AddFormats = (ajv: Ajv) => Ajv;
// ajv-formats is CommonJS: under NodeNext its function is the default export's `default`.
const formatsModule = ajvFormats as unknown as { default: AddFormats | { default: AddFormats } };
const addFormats: AddFormats = typeof formatsModule.default === 'function' ? formatsModule.default : formatsModule.default.default;

// Compiled once at import: an immutable function, like the step checks in jobs.steps.ts.
const validateSchema = (() => {
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  addFormats(ajv);
  return ajv.compile<LibraryManifest>(schema);
})();

/** JSON pointer segment escaping (RFC 6901). */
const segment = (key: string | number) => String(key).replaceAll('~', '~0').replaceAll('/', '~1');

/** One Ajv error as a pointer at the offending value and a message in plain words. */
function toIssue(error: ErrorObject): BundleIssue | undefined {
  const at = error.instancePath;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'if': // the failing branch reports its own errors
      return undefined;
    case 'required':
      return { path: `${at}/${segment(String(params.missingProperty))}`, message: 'is required' };
    case 'additionalProperties':
      return { path: `${at}/${segment(String(params.additionalProperty))}`, message: 'is not allowed here' };
    case 'propertyNames':
      return undefined; // reported by the name's own pattern error, below
    case 'enum':
      return { path: at, message: `must be one of ${(params.allowedValues as unknown[]).join(', ')}` };
    case 'const':
      return { path: at, message: `must be ${JSON.stringify(params.allowedValue)}` };
    case 'pattern':
      if (error.schemaPath === '#/definitions/semver/pattern') {
        return { path: at, message: 'must be a semantic version: major.minor.patch with an optional -prerelease and +build (e.g. 1.2.0, 2.0.0-beta.1)' };
      }
      if (error.propertyName !== undefined) {
        return { path: `${at}/${segment(error.propertyName)}`, message: `name must match pattern "${String(params.pattern)}"` };
      }
      return { path: at, message: `must match pattern "${String(params.pattern)}"` };
    default:
      return { path: at, message: error.message ?? error.keyword };
  }
}

/** Whether `value` is a `type`. */
function fitsType(value: unknown, type: ParameterType): boolean {
  switch (type) {
    case 'integer':
      return Number.isSafeInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'string':
    case 'boolean':
      return typeof value === type;
  }
}

/** Parameter values end up as object keys; these would reach the prototype instead. */
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

const article = (type: ParameterType) => (type === 'integer' ? 'an integer' : `a ${type}`);

/** Problems with one step's parameters: enum values and defaults of the wrong type, secret defaults. */
function parameterIssues(step: LibraryStep, at: string): BundleIssue[] {
  const issues: BundleIssue[] = [];
  for (const [name, parameter] of Object.entries(step.parameters)) {
    const here = `${at}/parameters/${segment(name)}`;
    if (RESERVED_NAMES.has(name)) {
      issues.push({ path: here, message: `"${name}" is reserved (it names a property every JavaScript object has)` });
    }
    parameter.enum?.forEach((value, i) => {
      if (!fitsType(value, parameter.type)) {
        issues.push({ path: `${here}/enum/${i}`, message: `must be ${article(parameter.type)}, as the parameter's type says` });
      }
    });
    if (parameter.default === undefined) {
      continue;
    }
    if (!fitsType(parameter.default, parameter.type)) {
      issues.push({ path: `${here}/default`, message: `must be ${article(parameter.type)}, as the parameter's type says` });
    } else if (parameter.enum && !parameter.enum.includes(parameter.default)) {
      issues.push({ path: `${here}/default`, message: `must be one of the enum values (${parameter.enum.join(', ')})` });
    }
    if (parameter.secret) {
      // A default in a shipped manifest is readable by anyone who can read the library.
      issues.push({ path: `${here}/default`, message: 'a secret parameter cannot have a default' });
    }
  }
  return issues;
}

/** `path` without `.` and empty segments. */
const canonicalPath = (path: string) =>
  path
    .split('/')
    .filter((s) => s !== '' && s !== '.')
    .join('/');

/** Problems the schema cannot express, in document order. */
function semanticIssues(manifest: LibraryManifest): BundleIssue[] {
  const issues: BundleIssue[] = [];
  for (const [id, range] of Object.entries(manifest.dependencies ?? {})) {
    const at = `/dependencies/${segment(id)}`;
    if (id === manifest.id) {
      issues.push({ path: at, message: 'a library cannot depend on itself' });
    } else if (!isValidRange(range)) {
      issues.push({ path: at, message: `${JSON.stringify(range)} is not a valid semver range` });
    }
  }
  const seen = new Map<string, number>();
  manifest.steps.forEach((step, index) => {
    const at = `/steps/${index}`;
    const first = seen.get(step.name);
    if (first === undefined) {
      seen.set(step.name, index);
    } else {
      issues.push({ path: `${at}/name`, message: `duplicate step name "${step.name}" (also /steps/${first}/name)` });
    }
    issues.push(...parameterIssues(step, at));
    const items = Array.isArray(step.implementation) ? step.implementation : [step.implementation];
    items.forEach((item, i) => {
      const here = Array.isArray(step.implementation) ? `${at}/implementation/${i}` : `${at}/implementation`;
      if (item.type === 'script') {
        const problem = pathProblem(item.file) ?? (canonicalPath(item.file) === item.file ? undefined : `write it as "${canonicalPath(item.file)}"`);
        if (problem) {
          issues.push({ path: `${here}/file`, message: `must be a plain relative path inside the bundle: ${problem}` });
        }
      }
    });
  });
  return issues;
}

/** Every script file the manifest's steps run, with the pointer of the reference. */
export function scriptReferences(manifest: LibraryManifest): Array<{ file: string; path: string }> {
  return manifest.steps.flatMap((step, index) => {
    const items = Array.isArray(step.implementation) ? step.implementation : [step.implementation];
    return items.flatMap((item, i) =>
      item.type === 'script' ? [{ file: item.file, path: `/steps/${index}${Array.isArray(step.implementation) ? `/implementation/${i}` : '/implementation'}/file` }] : [],
    );
  });
}

/** The error for manifest problems: the first in the message, all of them in `issues`. */
export function manifestError(issues: readonly BundleIssue[]): BundleError {
  const [first] = issues as [BundleIssue];
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more problem${issues.length > 2 ? 's' : ''})` : '';
  return new BundleError(`manifest.json ${first.path || '/'}: ${first.message}${more}`, first.path, issues);
}

/**
 * `value` as a manifest, or a {@link BundleError} listing every problem as pointer + message
 * (`manifest.json /steps/1/implementation/type: must be one of command, script, http`).
 */
export function checkManifest(value: unknown): LibraryManifest {
  if (!validateSchema(value)) {
    const issues = (validateSchema.errors ?? []).map(toIssue).filter((i): i is BundleIssue => i !== undefined);
    const unique = [...new Map(issues.map((i) => [`${i.path}\n${i.message}`, i])).values()];
    throw manifestError(unique.length > 0 ? unique : [{ path: '', message: 'does not match the manifest schema' }]);
  }
  const issues = semanticIssues(value);
  if (issues.length > 0) {
    throw manifestError(issues);
  }
  return value;
}
