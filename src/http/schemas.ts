/** Schemas shared by every module: errors, messages, pagination, ids. */
import { Type, type Static } from 'typebox';

/** The error envelope of every non-2xx response. */
export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      code: Type.String({ description: 'Stable machine-readable code, e.g. validation_error' }),
      message: Type.String({ description: 'Human-readable explanation' }),
      field: Type.Optional(Type.String({ description: 'The request field at fault' })),
      details: Type.Optional(Type.Unknown({ description: 'Structured details (e.g. what it conflicts with)' })),
    }),
    request_id: Type.String({ description: 'Echoed in the x-request-id header' }),
  },
  { $id: 'ErrorResponse', description: 'Error envelope' },
);

/** `{ message }` responses (deletes, logout …). */
export const MessageResponse = Type.Object({ message: Type.String() });

/** `?page&limit` (limit ≤ 200). */
export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, description: 'Page number, from 1 (default 1)' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, description: 'Page size, at most 200 (default 20)' })),
};

/** Resolved paging. */
export interface Paging {
  page: number;
  limit: number;
}

/** Applies defaults to a parsed page query. */
export function paging(query: { page?: number; limit?: number }): Paging {
  return { page: query.page ?? 1, limit: query.limit ?? 20 };
}

/** `/:id` with an integer id. */
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2147483647, description: 'Resource id' }) });
export type IdParams = Static<typeof IdParams>;

/** An ISO-8601 UTC timestamp. */
export const Timestamp = (description?: string) => Type.String({ format: 'date-time', description });
/** A nullable ISO-8601 timestamp. */
export const NullableTimestamp = (description?: string) => Type.Union([Timestamp(), Type.Null()], { description });

/** Date → ISO string (null stays null). */
export function iso(date: Date): string;
export function iso(date: Date | null): string | null;
export function iso(date: Date | null): string | null {
  return date ? date.toISOString() : null;
}

/** A string enum as `{ type: string, enum: [...] }` (one clear error instead of an anyOf cascade). */
export function StringEnum<const T extends readonly string[]>(values: T, options: { description?: string; default?: T[number] } = {}) {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });
}
