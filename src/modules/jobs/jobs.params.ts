/**
 * Job parameters: declarations on the job, values on each run. Values are checked against the
 * declarations (missing required, wrong type, undeclared → 400 naming `parameters.<name>`), defaults
 * are merged, and secret ones are masked wherever a run is shown.
 */
import { Type, type Static } from 'typebox';

import { ValidationError } from '../../errors.ts';
import { StringEnum } from '../../http/schemas.ts';

/** One declared parameter. */
export const ParameterDeclaration = Type.Object(
  {
    type: StringEnum(['string', 'number', 'boolean'] as const),
    required: Type.Optional(Type.Boolean()),
    default: Type.Optional(Type.Union([Type.String({ maxLength: 65536 }), Type.Number(), Type.Boolean()])),
    secret: Type.Optional(Type.Boolean({ description: 'Masked as *** in run details, output and logs' })),
    description: Type.Optional(Type.String({ maxLength: 1000 })),
  },
  { additionalProperties: false },
);
export type ParameterDeclaration = Static<typeof ParameterDeclaration>;

/** name → declaration. */
export const ParameterDeclarations = Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]{0,63}$' }), ParameterDeclaration, { maxProperties: 100, additionalProperties: false });
export type ParameterDeclarations = Static<typeof ParameterDeclarations>;

/** Parameter values of a run. */
export type ParameterValues = Record<string, string | number | boolean>;

/** Checks that every default has its declared type. */
export function checkDeclarations(declarations: ParameterDeclarations): void {
  for (const [name, decl] of Object.entries(declarations)) {
    if (decl.default !== undefined && typeof decl.default !== decl.type) {
      throw new ValidationError(`parameters.${name}.default must be a ${decl.type}`, `parameters.${name}.default`);
    }
  }
}

/** Validates run values against the declarations and merges defaults. */
export function resolveParameters(declarations: ParameterDeclarations, values: Record<string, unknown>): ParameterValues {
  for (const name of Object.keys(values)) {
    if (!(name in declarations)) {
      throw new ValidationError(`parameters.${name} is not declared by the job`, `parameters.${name}`);
    }
  }
  const resolved: ParameterValues = {};
  for (const [name, decl] of Object.entries(declarations)) {
    const value = values[name] ?? decl.default;
    if (value === undefined) {
      if (decl.required) {
        throw new ValidationError(`parameters.${name} is required`, `parameters.${name}`);
      }
      continue;
    }
    if (typeof value !== decl.type) {
      throw new ValidationError(`parameters.${name} must be a ${decl.type}`, `parameters.${name}`);
    }
    resolved[name] = value as string | number | boolean;
  }
  return resolved;
}

/** The values with secret ones replaced by `***`. */
export function maskParameters(declarations: ParameterDeclarations, values: ParameterValues): ParameterValues {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, declarations[k]?.secret ? '***' : v]));
}

/** The secret values (for masking output). */
export function secretValues(declarations: ParameterDeclarations, values: ParameterValues): string[] {
  return Object.entries(values)
    .filter(([k, v]) => declarations[k]?.secret && String(v).length > 0)
    .map(([, v]) => String(v));
}
