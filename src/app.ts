/**
 * buildApp(deps, options) → a Fastify instance serving the given services' routes plus /health,
 * /openapi.json and /docs. It never listens; main/ decides where.
 */
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';
import { registerAjvFormats, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify from 'fastify';

import type { Deps } from './deps.ts';
import { type AccessEntry, registerAuth } from './http/auth.plugin.ts';
import { handleError, handleNotFound } from './http/error-handler.ts';
import { healthRoutes } from './http/health.routes.ts';
import { registerOpenApi } from './http/openapi.ts';
import { genRequestId } from './http/request-id.ts';
import type { App } from './http/types.ts';
import { createValidatorCompiler } from './http/validation.ts';
import { registerServiceRoutes, type ServiceName } from './services.ts';
import { VERSION } from './version.ts';

/** What one HTTP listener serves. */
export interface AppOptions {
  /** Name reported by /health (`gateway` or the service name). */
  name: string;
  /** Services whose routes to register. */
  services: readonly ServiceName[];
  /** Receives every registered route with its access level (tests walk it). */
  accessTable?: AccessEntry[];
}

/** Builds the Fastify app for `options.services` over `deps`. */
export async function buildApp(deps: Deps, options: AppOptions): Promise<App> {
  registerAjvFormats();
  const app = Fastify({
    loggerInstance: deps.logger.child({ listener: options.name }),
    genReqId: genRequestId,
    bodyLimit: deps.config.http.bodyLimit,
    trustProxy: deps.config.http.trustProxy,
  }).withTypeProvider<TypeBoxTypeProvider>() as unknown as App;
  app.setValidatorCompiler(createValidatorCompiler());
  app.setErrorHandler(handleError);
  app.setNotFoundHandler(handleNotFound);
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id);
  });
  // A request without a body is validated as `{}`: optional bodies pass, required fields are named.
  app.addHook('preValidation', async (request) => {
    if (request.body === undefined && request.routeOptions.schema?.body) {
      request.body = {};
    }
  });
  await app.register(helmet, { global: true });
  if (deps.config.http.corsOrigins.length > 0) {
    await app.register(cors, { origin: [...deps.config.http.corsOrigins], credentials: false });
  }
  registerAuth(app, deps.auth.authenticate, options.accessTable ?? []);
  await registerOpenApi(app, { title: `OpsConductor ${options.name}`, version: VERSION });
  healthRoutes(app, { database: deps.database, service: options.name, version: VERSION });
  for (const service of options.services) {
    registerServiceRoutes(app, service, deps);
  }
  return app;
}
