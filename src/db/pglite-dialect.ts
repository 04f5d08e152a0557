/**
 * A Kysely dialect for PGlite. Transactions go through PGlite's own `transaction()`, which holds
 * PGlite's mutex for the whole transaction, so no other query (Kysely's or pg-boss's) can slip in
 * between our BEGIN and COMMIT on its single connection (DESIGN.md §2).
 */
import { parse, type PGlite, protocol, type Transaction } from '@electric-sql/pglite';
import {
  type CompiledQuery,
  type DatabaseConnection,
  type DatabaseIntrospector,
  type Dialect,
  type DialectAdapter,
  type Driver,
  type Kysely,
  PostgresAdapter,
  PostgresIntrospector,
  PostgresQueryCompiler,
  type QueryCompiler,
  type QueryResult,
} from 'kysely';

type Queryer = Pick<PGlite, 'query' | 'exec'>;

const wire = protocol.serialize;

/** A parameter as PostgreSQL's text format, the way node-postgres sends it (so both databases see the same values). */
export function textParam(value: unknown): string | null {
  if (value === null || value === undefined) {
    return null;
  }
  if (value instanceof Date) {
    return value.toISOString();
  }
  if (Buffer.isBuffer(value)) {
    return `\\x${value.toString('hex')}`;
  }
  if (Array.isArray(value)) {
    return `{${value.map((v) => arrayElement(v)).join(',')}}`;
  }
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function arrayElement(value: unknown): string {
  if (Array.isArray(value)) {
    return textParam(value) as string;
  }
  const text = textParam(value);
  return text === null ? 'NULL' : `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * One parameterised statement in a single pass through PGlite: parse, bind, describe, execute and
 * sync sent as one message, instead of the five calls `PGlite.query` makes to learn the parameter
 * types first (a third to a half of a short statement's cost). Parameters go as text, typed by the
 * server, like node-postgres does. Holds PGlite's locks as `query` does: the transaction lock as
 * well when not inside our transaction, so a statement can never land inside someone else's.
 */
async function runExtended<R>(pg: PGlite, inTransaction: boolean, sql: string, params: readonly unknown[]): Promise<QueryResult<R>> {
  const message = concat([wire.parse({ text: sql }), wire.bind({ values: params.map(textParam) }), wire.describe({ type: 'P' }), wire.execute({}), wire.sync()]);
  const run = () => pg._runExclusiveQuery(async () => (await pg.execProtocol(message, { syncToFs: false })).messages);
  const messages = inTransaction ? await run() : await pg._runExclusiveTransaction(run);
  const [result] = parse.parseResults(messages, pg.parsers);
  return { rows: (result?.rows ?? []) as R[], numAffectedRows: toBigInt(result?.affectedRows) };
}

/** Runs one statement, or a parameterless multi-statement script through `exec`. */
export async function runOnPglite<R>(pg: PGlite, tx: Queryer | undefined, sql: string, params: readonly unknown[]): Promise<QueryResult<R>> {
  if (params.length === 0) {
    const results = await (tx ?? pg).exec(sql);
    const last = results[results.length - 1];
    return { rows: (last?.rows ?? []) as R[], numAffectedRows: toBigInt(last?.affectedRows) };
  }
  return runExtended<R>(pg, tx !== undefined, sql, params);
}

function toBigInt(n: number | undefined): bigint | undefined {
  return n === undefined ? undefined : BigInt(n);
}

class PgliteConnection implements DatabaseConnection {
  #tx: Transaction | undefined;
  #finish: ((rollback: boolean) => void) | undefined;
  #done: Promise<void> | undefined;

  constructor(private readonly pg: PGlite) {}

  async begin(): Promise<void> {
    let started!: () => void;
    const ready = new Promise<void>((resolve) => (started = resolve));
    this.#done = this.pg.transaction(async (tx) => {
      this.#tx = tx;
      started();
      const rollback = await new Promise<boolean>((resolve) => (this.#finish = resolve));
      if (rollback) {
        await tx.rollback();
      }
    });
    await Promise.race([ready, this.#done]);
  }

  async end(rollback: boolean): Promise<void> {
    const done = this.#done;
    this.#finish?.(rollback);
    this.#tx = undefined;
    this.#finish = undefined;
    this.#done = undefined;
    await done;
  }

  executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    return runOnPglite<R>(this.pg, this.#tx, query.sql, query.parameters);
  }

  // eslint-disable-next-line require-yield
  async *streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('Streaming queries are not supported on PGlite');
  }
}

class PgliteDriver implements Driver {
  constructor(private readonly pg: PGlite) {}
  async init(): Promise<void> {}
  async acquireConnection(): Promise<DatabaseConnection> {
    return new PgliteConnection(this.pg);
  }
  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PgliteConnection).begin();
  }
  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PgliteConnection).end(false);
  }
  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await (connection as PgliteConnection).end(true);
  }
  async releaseConnection(): Promise<void> {}
  async destroy(): Promise<void> {}
}

/** Kysely dialect over an open PGlite instance (the caller owns and closes it). */
export class PgliteDialect implements Dialect {
  constructor(private readonly pg: PGlite) {}
  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }
  createDriver(): Driver {
    return new PgliteDriver(this.pg);
  }
  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }
  createIntrospector(db: Kysely<unknown>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}
