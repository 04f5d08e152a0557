/**
 * Secret settings (the generated JWT secret, SMTP password, …): sealed under the master keyring
 * in `settings.secret_ciphertext`, never stored in plain text.
 */
import type { Queryable } from '../db/schema.ts';
import { type Keyring, open, rewrap, seal } from '../shared/crypto-box.ts';

const context = (key: string) => `setting:${key}`;

/** Builds the store over `db` and `keyring`. */
export function createSecretSettings(db: Queryable, keyring: Keyring) {
  async function get<T>(key: string): Promise<T | undefined> {
    const row = await db.selectFrom('settings').select('secret_ciphertext').where('key', '=', key).executeTakeFirst();
    return row?.secret_ciphertext ? open<T>(keyring, row.secret_ciphertext, context(key)) : undefined;
  }

  return {
    get,

    async set(key: string, value: unknown, q: Queryable = db): Promise<void> {
      const sealed = seal(keyring, value, context(key));
      await q
        .insertInto('settings')
        .values({ key, secret_ciphertext: sealed.envelope, key_id: sealed.keyId })
        .onConflict((oc) => oc.column('key').doUpdateSet({ secret_ciphertext: sealed.envelope, key_id: sealed.keyId, updated_at: new Date() }))
        .execute();
    },

    /** Forgets the secret stored under `key` (the row stays, without its ciphertext). */
    async remove(key: string): Promise<void> {
      await db.updateTable('settings').set({ secret_ciphertext: null, key_id: null, updated_at: new Date() }).where('key', '=', key).execute();
    },

    /** The stored value, or `make()` stored first; concurrent first callers agree on one value. */
    async getOrCreate<T>(key: string, make: () => T): Promise<T> {
      const sealed = seal(keyring, make(), context(key));
      await db
        .insertInto('settings')
        .values({ key, secret_ciphertext: sealed.envelope, key_id: sealed.keyId })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      return (await get<T>(key)) as T;
    },

    /**
     * Re-wraps every secret setting not yet under the current master key; returns how many.
     * Each write is conditional on the envelope read, so a value changed meanwhile is never
     * overwritten with the old one (it is picked up again on the next pass instead).
     */
    async rewrapAll(): Promise<number> {
      let changed = 0;
      for (;;) {
        const rows = await db
          .selectFrom('settings')
          .select(['key', 'secret_ciphertext'])
          .where('secret_ciphertext', 'is not', null)
          .where((eb) => eb.or([eb('key_id', 'is', null), eb('key_id', '!=', keyring.current.id)]))
          .execute();
        if (rows.length === 0) {
          return changed;
        }
        for (const row of rows) {
          const previous = row.secret_ciphertext as string;
          const next = rewrap(keyring, previous);
          await db
            .updateTable('settings')
            .set({ secret_ciphertext: next.envelope, key_id: next.keyId })
            .where('key', '=', row.key)
            .where('secret_ciphertext', '=', previous)
            .execute();
          changed++;
        }
      }
    },
  };
}

/** The secret settings store. */
export type SecretSettings = ReturnType<typeof createSecretSettings>;
