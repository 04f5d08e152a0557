/** SQL for users. Unique violations become 409s naming `username` or `email`. */
import { sql } from 'kysely';

import { rethrowConflict } from '../../db/errors.ts';
import { containsPattern } from '../../db/like.ts';
import type { NewUserRow, Queryable, UserRow } from '../../db/schema.ts';

const UNIQUE_FIELDS = { users_username_key: 'username', users_email_key: 'email' };

/** Columns a user update may set. */
export type UserPatch = Partial<Pick<UserRow, 'email' | 'role' | 'is_active' | 'password_hash'>> & { bumpTokenVersion?: boolean };


/** Builds the users repository over `db`. */
export function createUsersRepo(db: Queryable) {
  return {
    async list(filter: { search?: string; offset: number; limit: number }): Promise<{ rows: UserRow[]; total: number }> {
      let query = db.selectFrom('users');
      if (filter.search) {
        const pattern = containsPattern(filter.search);
        query = query.where((eb) => eb.or([eb('username', 'ilike', pattern), eb('email', 'ilike', pattern)]));
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('id', 'asc').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    async findById(id: number, q: Queryable = db): Promise<UserRow | undefined> {
      return q.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async findByUsername(username: string): Promise<UserRow | undefined> {
      return db.selectFrom('users').selectAll().where(sql`lower(username)`, '=', username.toLowerCase()).executeTakeFirst();
    },

    async insert(row: NewUserRow, q: Queryable = db): Promise<UserRow> {
      try {
        return await q.insertInto('users').values(row).returningAll().executeTakeFirstOrThrow();
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'user');
      }
    },

    async update(id: number, patch: UserPatch, at: Date, q: Queryable = db): Promise<UserRow | undefined> {
      const { bumpTokenVersion, ...columns } = patch;
      try {
        return await q
          .updateTable('users')
          .set({ ...columns, updated_at: at })
          .$if(Boolean(bumpTokenVersion), (qb) => qb.set((eb) => ({ token_version: eb('token_version', '+', 1) })))
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirst();
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'user');
      }
    },

    async delete(id: number, q: Queryable = db): Promise<boolean> {
      const result = await q.deleteFrom('users').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },

    /** Ids of active admins, row-locked so concurrent demotions serialise. */
    async lockActiveAdmins(q: Queryable): Promise<number[]> {
      const rows = await q.selectFrom('users').select('id').where('role', '=', 'admin').where('is_active', '=', true).forUpdate().execute();
      return rows.map((r) => r.id);
    },

    async isEmpty(): Promise<boolean> {
      const row = await db.selectFrom('users').select('id').limit(1).executeTakeFirst();
      return row === undefined;
    },
  };
}

/** The users repository. */
export type UsersRepo = ReturnType<typeof createUsersRepo>;
