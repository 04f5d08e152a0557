/**
 * A Kysely dialect for PGlite. Transactions go through PGlite's own `transaction()`, which holds
 * PGlite's mutex for the whole transaction, so no other query (Kysely's or pg-boss's) can slip in
 * between our BEGIN and COMMIT on its single connection (DESIGN.md §2).
 */
import type { PGlite, Transaction } from '@electric-sql/pglite';
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

/** Runs one statement, or a parameterless multi-statement script through `exec`. */
export async function runOnPglite<R>(target: Queryer, sql: string, params: readonly unknown[]): Promise<QueryResult<R>> {
  if (params.length === 0) {
    const results = await target.exec(sql);
    const last = results[results.length - 1];
    return { rows: (last?.rows ?? []) as R[], numAffectedRows: toBigInt(last?.affectedRows) };
  }
  const result = await target.query<R>(sql, params as unknown[]);
  return { rows: result.rows, numAffectedRows: toBigInt(result.affectedRows) };
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
    return runOnPglite<R>(this.#tx ?? this.pg, query.sql, query.parameters);
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
