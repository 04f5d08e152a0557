/**
 * Request validation. Bodies are checked strictly by TypeBox (no coercion: `"5"` is not a number).
 * Query strings and path parameters are text, so they go through Ajv with type coercion, which
 * turns `"5"` into 5 but refuses `"2.9"` for an integer (TypeBox's converter would truncate it).
 */
import { TypeBoxValidatorCompiler } from '@fastify/type-provider-typebox';
import { Ajv, type ValidateFunction } from 'ajv';
import * as ajvFormats from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';

type AddFormats = (ajv: Ajv) => Ajv;
// ajv-formats is CommonJS: under NodeNext its function is the default export's `default`.
const formatsModule = ajvFormats as unknown as { default: AddFormats | { default: AddFormats } };
const addFormats: AddFormats = typeof formatsModule.default === 'function' ? formatsModule.default : formatsModule.default.default;

/** Builds the validator compiler for one app. */
export function createValidatorCompiler(): FastifySchemaCompiler<unknown> {
  const ajv = new Ajv({ coerceTypes: 'array', useDefaults: false, removeAdditional: false, allErrors: true, strict: false });
  addFormats(ajv);
  const cache = new WeakMap<object, ValidateFunction>();
  return (route) => {
    if (route.httpPart === 'body') {
      return TypeBoxValidatorCompiler(route as Parameters<typeof TypeBoxValidatorCompiler>[0]);
    }
    const schema = route.schema as object;
    const validate = cache.get(schema) ?? ajv.compile(schema);
    cache.set(schema, validate);
    return (data: unknown) => (validate(data) ? { value: data } : { error: validate.errors ?? [] }) as never;
  };
}
