/**
 * Step libraries: the shipped catalog (catalog/<id>/), installs from it or from an uploaded
 * bundle — validated whole before anything is written, then recorded in one transaction (a failed
 * install leaves the previous version in place) — upgrades, guarded downgrades, dependencies,
 * uninstall guarded by the jobs and installed libraries that use a library, and signed download URLs for catalog bundles.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Db } from '../../db/schema.ts';
import { ConflictError, NotFoundError, PermissionError, ValidationError } from '../../errors.ts';
import { BundleError, type LibraryManifest, readBundle, writeBundle } from '../../libraries/bundle.ts';
import { compareVersions, satisfies } from '../../libraries/semver.ts';
import type { SecretSettings } from '../../secrets/secret-settings.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import { VERSION } from '../../version.ts';
import type { AuditService } from '../audit/index.ts';
import { brokenDependents, describeDependents } from './libraries.dependencies.ts';
import type { LibrariesRepo } from './libraries.repo.ts';
import { expandStep, type VersionContent } from './libraries.steps.ts';

/** The shipped catalog, beside src/. */
export const CATALOG_DIR = fileURLToPath(new URL('../../../catalog/', import.meta.url));
const DOWNLOAD_TTL_S = 15 * 60;
const SIGNING_KEY = 'library_download_key';

/** JSON with object keys sorted, to compare documents however they were stored. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
}

/** Every file under `dir`, by path relative to it. */
function filesUnder(dir: string, root = dir, out = new Map<string, Buffer>()): Map<string, Buffer> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      filesUnder(path, root, out);
    } else {
      out.set(relative(root, path).split('\\').join('/'), readFileSync(path));
    }
  }
  return out;
}

/** Builds the libraries service. */
export function createLibrariesService(deps: { db: Db; repo: LibrariesRepo; secretSettings: SecretSettings; audit: AuditService; clock: Clock; catalogDir?: string }) {
  const { db, repo, secretSettings, audit, clock } = deps;
  const catalogDir = deps.catalogDir ?? CATALOG_DIR;
  // The shipped catalog does not change while the process runs: each manifest is read and each bundle built once.
  const manifests = new Map<string, LibraryManifest | undefined>();
  const bundles = new Map<string, Promise<Buffer>>();

  function catalogManifest(id: string): LibraryManifest | undefined {
    if (!/^[a-z0-9][a-z0-9-]{1,63}$/.test(id)) {
      return undefined;
    }
    if (!manifests.has(id)) {
      const path = join(catalogDir, id, 'manifest.json');
      manifests.set(id, existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as LibraryManifest) : undefined);
    }
    return manifests.get(id);
  }

  /** The catalog library `id` as a .tar.gz bundle. */
  function catalogBundle(id: string): Promise<Buffer> {
    const manifest = catalogManifest(id);
    if (!manifest) {
      return Promise.reject(new NotFoundError(`Library ${id} is not in the catalog`));
    }
    let bundle = bundles.get(id);
    if (!bundle) {
      const files = filesUnder(join(catalogDir, id));
      files.delete('manifest.json');
      bundle = writeBundle(manifest, files);
      bundles.set(id, bundle);
    }
    return bundle;
  }

  const signature = async (id: string, expires: number) => {
    const key = await secretSettings.getOrCreate(SIGNING_KEY, () => randomBytes(32).toString('base64'));
    return createHmac('sha256', key).update(`${id}\n${expires}`).digest('base64url');
  };

  async function installedContent(id: string, field = 'library'): Promise<VersionContent> {
    const row = await repo.installedVersion(id);
    if (!row) {
      throw new ValidationError(`${field}: library ${id} is not installed`, field);
    }
    return row as unknown as VersionContent;
  }

  const service = {
    /** The shipped libraries and whether each is installed. */
    async catalog() {
      const installed = new Map((await repo.installed()).map((l) => [l.id, l.installed_version]));
      const shipped = (existsSync(catalogDir) ? readdirSync(catalogDir).sort() : []).flatMap((id) => {
        const m = catalogManifest(id);
        return m ? [{ id, m }] : [];
      });
      return shipped.map(({ id, m }) => ({ id, name: m.name, version: m.version, description: m.description, installed: installed.has(id), installed_version: installed.get(id) ?? null }));
    },

    /** A URL that serves the catalog bundle without a login for 15 minutes. */
    async downloadUrl(id: string): Promise<{ path: string; expiresAt: Date }> {
      if (!catalogManifest(id)) {
        throw new NotFoundError(`Library ${id} is not in the catalog`);
      }
      const expires = Math.floor(clock.now().getTime() / 1000) + DOWNLOAD_TTL_S;
      return { path: `/catalog/${id}/bundle?expires=${expires}&signature=${await signature(id, expires)}`, expiresAt: new Date(expires * 1000) };
    },

    /** The bundle behind a signed URL; 403 when the signature is wrong or expired. */
    async signedBundle(id: string, expires: number, given: string): Promise<Buffer> {
      const expected = Buffer.from(await signature(id, expires));
      const actual = Buffer.from(given);
      if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
        throw new PermissionError('This download link is not valid');
      }
      if (expires * 1000 < clock.now().getTime()) {
        throw new PermissionError('This download link has expired');
      }
      return catalogBundle(id);
    },

    /** Validates `data` whole, then installs it in one transaction. */
    async install(actor: Actor, data: Buffer, source: 'catalog' | 'upload', options: { allowDowngrade?: boolean; force?: boolean } = {}) {
      let bundle: Awaited<ReturnType<typeof readBundle>>;
      try {
        bundle = await readBundle(data);
      } catch (e) {
        if (e instanceof BundleError) {
          throw new ValidationError(`bundle: ${e.message}`, 'bundle', { details: e.path !== undefined ? { path: e.path, issues: e.issues } : undefined });
        }
        throw e;
      }
      const { manifest } = bundle;
      if (manifest.min_opsconductor_version && compareVersions(VERSION, manifest.min_opsconductor_version) < 0) {
        throw new ValidationError(`bundle: ${manifest.id} ${manifest.version} needs OpsConductor ${manifest.min_opsconductor_version} or later (this is ${VERSION})`, 'bundle');
      }
      const installedRows = await repo.installed();
      const installed = new Map(installedRows.map((l) => [l.id, l.installed_version]));
      for (const [dep, range] of Object.entries(manifest.dependencies ?? {})) {
        const have = installed.get(dep);
        if (!have || !satisfies(have, range)) {
          throw new ConflictError(`${manifest.id} needs ${dep} ${range}; ${have ? `${have} is installed` : 'it is not installed'}`, undefined, { details: { dependency: dep, range, installed: have ?? null } });
        }
      }
      const current = installed.get(manifest.id);
      if (current && compareVersions(manifest.version, current) < 0 && !options.allowDowngrade) {
        throw new ConflictError(`${manifest.id} ${current} is installed; installing the older ${manifest.version} needs allow_downgrade=true`);
      }
      const broken = current === manifest.version ? [] : brokenDependents(installedRows, manifest.id, manifest.version);
      if (broken.length > 0 && !options.force) {
        throw new ConflictError(`Installed libraries need another version of ${manifest.id} than ${manifest.version}: ${describeDependents(broken)}; change them or install with force=true`, undefined, {
          details: { dependents: broken },
        });
      }
      const files = Object.fromEntries([...bundle.files].map(([path, content]) => [path, content.toString('base64')]));
      const existing = await repo.version(manifest.id, manifest.version);
      // Versions are immutable: the same version again must hold the same manifest and files (the archive bytes may differ).
      if (existing && canonical({ m: existing.manifest, f: existing.files }) !== canonical({ m: manifest, f: files })) {
        throw new ConflictError(`${manifest.id} ${manifest.version} was installed before with other content (SHA-256 ${existing.sha256}); give the new content a new version`);
      }
      await db.transaction().execute((tx) =>
        repo.install(tx, { library_id: manifest.id, version: manifest.version, manifest: manifest as unknown as Record<string, unknown>, files, sha256: bundle.sha256, source, installed_by: actor.id }, clock.now()),
      );
      const verb = !current ? 'Installed' : current === manifest.version ? 'Reinstalled' : compareVersions(manifest.version, current) > 0 ? 'Upgraded' : 'Downgraded';
      await audit.record(actor, 'library.install', { type: 'library', id: manifest.id }, { version: manifest.version, previous: current ?? null, sha256: bundle.sha256, source });
      return { message: `${verb} ${manifest.id} ${manifest.version}${current && current !== manifest.version ? ` (was ${current})` : ''}`, version: manifest.version, sha256: bundle.sha256 };
    },

    async installFromCatalog(actor: Actor, id: string, options: { version?: string; allowDowngrade?: boolean; force?: boolean }) {
      const manifest = catalogManifest(id);
      if (!manifest) {
        throw new NotFoundError(`Library ${id} is not in the catalog`);
      }
      if (options.version !== undefined && options.version !== manifest.version) {
        throw new NotFoundError(`The catalog has ${id} ${manifest.version}, not ${options.version}`);
      }
      return service.install(actor, await catalogBundle(id), 'catalog', options);
    },

    async uninstall(actor: Actor, id: string, force: boolean): Promise<string> {
      await service.get(id);
      const jobs = await repo.jobsUsing(id);
      const dependents = brokenDependents(await repo.installed(), id, undefined);
      if ((jobs.length > 0 || dependents.length > 0) && !force) {
        const users = [
          jobs.length > 0 && `jobs use ${id}: ${jobs.map((j) => `${j.name} (${j.id})`).join(', ')}`,
          dependents.length > 0 && `installed libraries depend on ${id}: ${describeDependents(dependents)}`,
        ].filter(Boolean);
        throw new ConflictError(`Cannot uninstall ${id}: ${users.join('; ')}; change them or uninstall with force=true`, undefined, { details: { jobs, dependents } });
      }
      await repo.uninstall(id);
      await audit.record(actor, 'library.uninstall', { type: 'library', id }, { force, jobs: jobs.map((j) => j.id), dependents: dependents.map((d) => d.id) });
      return `Uninstalled ${id}`;
    },

    list: () => repo.installed(),
    async get(id: string) {
      const row = await repo.installedVersion(id);
      if (!row) {
        throw new NotFoundError(`Library ${id} is not installed`);
      }
      return row;
    },

    /** Checks a job's library step against the installed manifest (400 naming the field). */
    async checkJobStep(step: Record<string, unknown> & { name: string }, field: string): Promise<void> {
      expandStep(await installedContent(String(step.library), `${field}.library`), step, field);
    },

    /** A job's steps with library steps expanded from the installed versions (at queue time). */
    async expandSteps(steps: Array<Record<string, unknown>>): Promise<Array<Record<string, unknown>>> {
      if (!steps.some((s) => s.type === 'library')) {
        return steps;
      }
      const out: Array<Record<string, unknown>> = [];
      for (const [i, step] of steps.entries()) {
        out.push(...(step.type === 'library' ? expandStep(await installedContent(String(step.library), `steps[${i}].library`), step as typeof step & { name: string }, `steps[${i}]`) : [step]));
      }
      return out;
    },

    /** One installed step expanded for a direct execution. */
    async expandOne(id: string, stepName: string, parameters: Record<string, unknown>) {
      const version = await installedContent(id, 'library');
      return expandStep(version, { name: stepName, step: stepName, parameters, timeout_s: 300, continue_on_error: false, retries: 0 }, 'step');
    },
  };
  return service;
}

/** The libraries service. */
export type LibrariesService = ReturnType<typeof createLibrariesService>;
