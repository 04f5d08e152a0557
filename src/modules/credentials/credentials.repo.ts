/** SQL for credentials. Secrets arrive here already sealed; this file never sees plaintext. */
import { rethrowConflict } from '../../db/errors.ts';
import { containsPattern } from '../../db/like.ts';
import type { CredentialRow, Queryable } from '../../db/schema.ts';

const UNIQUE_FIELDS = { credentials_name_key: 'name' };

/** Columns written on create and update. */
export interface CredentialWrite {
  name: string;
  type: string;
  username: string | null;
  domain: string | null;
  auth: string | null;
  description: string;
  secret_ciphertext: string;
  key_id: string;
  secret_fields: string[];
  public_key_fingerprint: string | null;
  certificate_info: Record<string, unknown> | null;
}


/** Builds the credentials repository over `db`. */
export function createCredentialsRepo(db: Queryable) {
  return {
    async list(filter: { type?: string; search?: string; offset: number; limit: number }): Promise<{ rows: CredentialRow[]; total: number }> {
      let query = db.selectFrom('credentials');
      if (filter.type) {
        query = query.where('type', '=', filter.type);
      }
      if (filter.search) {
        const pattern = containsPattern(filter.search);
        query = query.where((eb) => eb.or([eb('name', 'ilike', pattern), eb('description', 'ilike', pattern), eb('username', 'ilike', pattern)]));
      }
      const [rows, count] = await Promise.all([
        query.selectAll().orderBy('id', 'desc').offset(filter.offset).limit(filter.limit).execute(),
        query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow(),
      ]);
      return { rows, total: Number(count.n) };
    },

    async findById(id: number, q: Queryable = db): Promise<CredentialRow | undefined> {
      return q.selectFrom('credentials').selectAll().where('id', '=', id).executeTakeFirst();
    },

    async insert(row: CredentialWrite, createdBy: number, q: Queryable = db): Promise<CredentialRow> {
      try {
        return await q
          .insertInto('credentials')
          .values({ ...row, certificate_info: row.certificate_info && JSON.stringify(row.certificate_info), created_by: createdBy })
          .returningAll()
          .executeTakeFirstOrThrow();
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'credential');
      }
    },

    async update(id: number, row: CredentialWrite, at: Date, q: Queryable = db): Promise<CredentialRow | undefined> {
      try {
        return await q
          .updateTable('credentials')
          .set({ ...row, certificate_info: row.certificate_info && JSON.stringify(row.certificate_info), updated_at: at })
          .where('id', '=', id)
          .returningAll()
          .executeTakeFirst();
      } catch (e) {
        return rethrowConflict(e, UNIQUE_FIELDS, 'credential');
      }
    },

    async delete(id: number, q: Queryable = db): Promise<boolean> {
      const result = await q.deleteFrom('credentials').where('id', '=', id).executeTakeFirst();
      return Number(result.numDeletedRows) === 1;
    },

    /** Rows whose data key is not wrapped by `keyId` (a batch, for rotation). */
    async findNotWrappedBy(keyId: string, limit: number): Promise<Array<{ id: number; secret_ciphertext: string }>> {
      return db.selectFrom('credentials').select(['id', 'secret_ciphertext']).where('key_id', '!=', keyId).orderBy('id').limit(limit).execute();
    },

    async setEnvelope(id: number, previous: string, envelope: string, keyId: string): Promise<void> {
      // Conditional on the old envelope: a concurrent secret update wins over a re-wrap.
      await db.updateTable('credentials').set({ secret_ciphertext: envelope, key_id: keyId }).where('id', '=', id).where('secret_ciphertext', '=', previous).execute();
    },
  };
}

/** The credentials repository. */
export type CredentialsRepo = ReturnType<typeof createCredentialsRepo>;
