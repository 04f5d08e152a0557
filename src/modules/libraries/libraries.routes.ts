/** Routes of the step libraries service (guide: Step Libraries Service, port 3011). */
import multipart from '@fastify/multipart';

import { ValidationError } from '../../errors.ts';
import { actorOf } from '../../http/auth.plugin.ts';
import { iso, MessageResponse } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { MAX_BUNDLE_BYTES } from '../../libraries/bundle.ts';
import type { ExecutorService } from '../executor/index.ts';
import {
  BundleQuery,
  CatalogResponse,
  DownloadResponse,
  ExecuteBody,
  ExecuteResponse,
  InstallBody,
  InstallQuery,
  InstallResponse,
  LibraryListResponse,
  LibraryParams,
  LibraryResponse,
  StepParams,
  StepsResponse,
  UninstallQuery,
} from './libraries.schemas.ts';
import type { LibrariesService } from './libraries.service.ts';
import type { ManifestStep } from './libraries.steps.ts';

const stepSummary = (s: ManifestStep) => ({
  name: s.name,
  display_name: s.display_name ?? null,
  description: s.description ?? null,
  category: s.category ?? null,
  platforms: s.platforms,
  parameters: (s.parameters ?? {}) as unknown as Record<string, Record<string, unknown>>,
});
const manifestOf = (row: { manifest: unknown }) => row.manifest as { name: string; version: string; steps: ManifestStep[] } & Record<string, unknown>;

/** Registers /catalog* and /libraries* on `app`. */
export function librariesRoutes(app: App, { libraries, executor }: { libraries: LibrariesService; executor: ExecutorService }): void {
  const tags = ['libraries'];

  app.get('/catalog', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Libraries shipped with OpsConductor, and whether each is installed', response: { 200: CatalogResponse } },
    handler: async () => ({ available_libraries: await libraries.catalog() }),
  });
  app.post('/catalog/:id/download', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'A signed URL serving the bundle without a login for 15 minutes', params: LibraryParams, response: { 200: DownloadResponse } },
    handler: async (request) => {
      const { path, expiresAt } = await libraries.downloadUrl(request.params.id);
      return { download_url: `${request.protocol}://${request.host}${path}`, expires_at: iso(expiresAt) };
    },
  });
  app.get('/catalog/:id/bundle', {
    config: { access: 'public' },
    schema: { tags, summary: 'The bundle behind a signed download URL (403 when tampered with or expired)', params: LibraryParams, querystring: BundleQuery },
    handler: async (request, reply) => {
      const bundle = await libraries.signedBundle(request.params.id, request.query.expires, request.query.signature);
      return reply.header('content-type', 'application/gzip').header('content-disposition', `attachment; filename="${request.params.id}.tar.gz"`).send(bundle);
    },
  });

  app.get('/libraries', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Installed libraries', response: { 200: LibraryListResponse } },
    handler: async () => ({
      libraries: (await libraries.list()).map((l) => ({ id: l.id, name: manifestOf(l).name, version: l.installed_version, steps: manifestOf(l).steps.length, installed_at: iso(l.installed_at), sha256: l.sha256, source: l.source })),
    }),
  });
  app.get('/libraries/:id', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'An installed library with its steps and manifest', params: LibraryParams, response: { 200: LibraryResponse } },
    handler: async (request) => {
      const row = await libraries.get(request.params.id);
      const manifest = manifestOf(row);
      return { id: row.library_id, name: manifest.name, version: row.version, sha256: row.sha256, installed_at: iso(row.installed_at_library), steps: manifest.steps.map(stepSummary), manifest };
    },
  });
  app.get('/libraries/:id/steps', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Steps of an installed library', params: LibraryParams, response: { 200: StepsResponse } },
    handler: async (request) => ({ steps: manifestOf(await libraries.get(request.params.id)).steps.map(stepSummary) }),
  });
  app.post('/libraries/:id/install', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Install (or upgrade to) the catalog version', params: LibraryParams, querystring: InstallQuery, body: InstallBody, response: { 200: InstallResponse } },
    handler: async (request) => libraries.installFromCatalog(actorOf(request), request.params.id, { version: request.body?.version, allowDowngrade: request.query.allow_downgrade, force: request.query.force }),
  });
  app.delete('/libraries/:id', {
    config: { access: 'admin' },
    schema: { tags, summary: 'Uninstall (409 listing the jobs and installed libraries that use it, unless force=true)', params: LibraryParams, querystring: UninstallQuery, response: { 200: MessageResponse } },
    handler: async (request) => ({ message: await libraries.uninstall(actorOf(request), request.params.id, request.query.force === true) }),
  });
  app.post('/libraries/:id/steps/:step_name/execute', {
    config: { access: 'operator' },
    schema: { tags, summary: 'Run one step on one target now', params: StepParams, body: ExecuteBody, response: { 200: ExecuteResponse } },
    handler: async (request) => {
      const { target_id, credential_id, ...values } = request.body.parameters;
      const steps = await libraries.expandOne(request.params.id, request.params.step_name, values);
      return executor.runLibrarySteps(actorOf(request), { targetId: target_id, credentialId: credential_id, steps, libraryId: request.params.id, stepName: request.params.step_name, timeoutS: request.body.timeout_s });
    },
  });

  void app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: MAX_BUNDLE_BYTES, files: 1, fields: 5 } });
    scope.post('/libraries/install', {
      config: { access: 'admin' },
      schema: { tags, summary: 'Install an uploaded bundle (multipart/form-data, field "bundle": .tar.gz or .zip)', querystring: InstallQuery, response: { 200: InstallResponse } },
      handler: async (request) => {
        const file = await request.file();
        if (!file) {
          throw new ValidationError('bundle: upload the bundle as multipart/form-data', 'bundle');
        }
        const data = await file.toBuffer().catch(() => {
          throw new ValidationError(`bundle: larger than ${MAX_BUNDLE_BYTES / 1024 / 1024} MiB`, 'bundle');
        });
        const query = request.query as { allow_downgrade?: boolean; force?: boolean };
        return libraries.install(actorOf(request), data, 'upload', { allowDowngrade: query.allow_downgrade, force: query.force });
      },
    });
  });
}
