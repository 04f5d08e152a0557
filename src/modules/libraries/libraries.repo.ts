/** Data access for installed libraries and their versions. */
import { sql } from 'kysely';

import type { Db, LibraryVersionRow, Queryable } from '../../db/schema.ts';

/** A version to record. */
export interface VersionWrite {
  library_id: string;
  version: string;
  manifest: Record<string, unknown>;
  files: Record<string, string>;
  sha256: string;
  source: 'catalog' | 'upload';
  installed_by: number | null;
}

/** Builds the libraries repo. */
export function createLibrariesRepo(db: Db) {
  return {
    /** Installed libraries with their installed version's row. */
    installed: () =>
      db
        .selectFrom('libraries as l')
        .innerJoin('library_versions as v', (j) => j.onRef('v.library_id', '=', 'l.id').onRef('v.version', '=', 'l.installed_version'))
        .select(['l.id', 'l.installed_version', 'l.installed_at', 'v.manifest', 'v.sha256', 'v.source'])
        .orderBy('l.id')
        .execute(),
    /** The installed version of `id`, with its manifest and files. */
    installedVersion: async (id: string, q: Queryable = db): Promise<(LibraryVersionRow & { installed_at_library: Date }) | undefined> =>
      (await q
        .selectFrom('libraries as l')
        .innerJoin('library_versions as v', (j) => j.onRef('v.library_id', '=', 'l.id').onRef('v.version', '=', 'l.installed_version'))
        .selectAll('v')
        .select('l.installed_at as installed_at_library')
        .where('l.id', '=', id)
        .executeTakeFirst()) as (LibraryVersionRow & { installed_at_library: Date }) | undefined,
    version: (id: string, version: string, q: Queryable = db) => q.selectFrom('library_versions').selectAll().where('library_id', '=', id).where('version', '=', version).executeTakeFirst(),

    /** Records the version (if new) and makes it the installed one, in `tx`. */
    async install(tx: Queryable, row: VersionWrite, now: Date): Promise<void> {
      await tx
        .insertInto('library_versions')
        .values({ ...row, manifest: JSON.stringify(row.manifest), files: JSON.stringify(row.files), installed_at: now })
        .onConflict((oc) => oc.columns(['library_id', 'version']).doNothing())
        .execute();
      await tx
        .insertInto('libraries')
        .values({ id: row.library_id, installed_version: row.version, installed_at: now, installed_by: row.installed_by })
        .onConflict((oc) => oc.column('id').doUpdateSet({ installed_version: row.version, installed_at: now, installed_by: row.installed_by }))
        .execute();
    },
    uninstall: (id: string) => db.deleteFrom('libraries').where('id', '=', id).execute(),

    /** Jobs whose steps use library `id`. */
    jobsUsing: (id: string) =>
      db
        .selectFrom('jobs')
        .select(['id', 'name'])
        .where(sql<boolean>`exists (select 1 from jsonb_array_elements(steps) s where s->>'type' = 'library' and s->>'library' = ${id})`)
        .orderBy('id')
        .execute(),
  };
}

/** The libraries repo. */
export type LibrariesRepo = ReturnType<typeof createLibrariesRepo>;
