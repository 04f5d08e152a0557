/** SQL for job definitions. */
import { rethrowConflict } from '../../db/errors.ts';
import { containsPattern } from '../../db/like.ts';
import type { JobRow, Queryable } from '../../db/schema.ts';

const UNIQUE_FIELDS = { jobs_name_key: 'name' };

/** Columns a create or update writes. */
export type JobWrite = Pick<JobRow, 'name' | 'description' | 'status' | 'steps' | 'parameters' | 'concurrency' | 'allow_concurrent_runs' | 'timeout_s' | 'notify'>;

function toColumns(row: Partial<JobWrite>) {
  return {
    ...row,
    steps: row.steps && JSON.stringify(row.steps),
    parameters: row.parameters && JSON.stringify(row.parameters),
    ...(row.notify !== undefined ? { notify: row.notify === null ? null : JSON.stringify(row.notify) } : {}),
  };
}

/** Builds the jobs repository over `db`. */
export function createJobsRepo(db: Queryable) {
  return {
    async list(filter: { status?: string; createdBy?: number; search?: string; offset: number; limit: number }): Promise<{ rows: JobRow[]; total: number }> {
      let query = db.selectFrom('jobs');
      if (filter.status) {
        query = query.where('status', '=', filter.status);
      }
      if (filter.createdBy !== undefined) {
        query = query.where('created_by', '=', filter.createdBy);
      }
      if (filter.search) {
        const pattern = containsPattern(filter.search);
        query = query.where((eb) => eb.or([eb('name', 'ilike', pattern), eb('description', 'ilike', pattern)]));
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('id', 'desc').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    findById: (id: number, q: Queryable = db): Promise<JobRow | undefined> => q.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst(),

    async insert(row: JobWrite, createdBy: number, q: Queryable = db): Promise<JobRow> {
      try {
        return await q.insertInto('jobs').values({ ...toColumns(row), created_by: createdBy } as never).returningAll().executeTakeFirstOrThrow();
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'job');
      }
    },

    async update(id: number, row: Partial<JobWrite>, at: Date, q: Queryable = db): Promise<JobRow | undefined> {
      try {
        return await q.updateTable('jobs').set({ ...toColumns(row), updated_at: at } as never).where('id', '=', id).returningAll().executeTakeFirst();
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'job');
      }
    },

    async delete(id: number, q: Queryable = db): Promise<boolean> {
      return Number((await q.deleteFrom('jobs').where('id', '=', id).executeTakeFirst()).numDeletedRows) === 1;
    },
  };
}

/** The jobs repository. */
export type JobsRepo = ReturnType<typeof createJobsRepo>;
