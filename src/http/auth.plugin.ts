/**
 * Authentication and role checks for every route. A route declares `config.access` (`public` or
 * the minimum role); a route without it fails registration, so nothing is left open by mistake.
 */
import type { FastifyRequest, RouteOptions } from 'fastify';

import { AuthError, PermissionError } from '../errors.ts';
import { type Actor, hasRole, type RequestContext } from '../shared/roles.ts';
import type { Access, App } from './types.ts';

/** Turns a bearer token into an actor (the auth service's `authenticate`). */
export type Authenticate = (authorization: string | undefined, ctx: RequestContext) => Promise<Actor>;

/** Paths served by plugins we do not write routes for (interactive docs). */
const PUBLIC_PREFIXES = ['/docs'];

/** The request's origin, for audit entries and throttling. */
export function requestContext(request: FastifyRequest): RequestContext {
  return { ip: request.ip, requestId: request.id };
}

/** The authenticated caller of a non-public route. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.actor) {
    throw new AuthError();
  }
  return request.actor;
}

/** One registered route and who may call it. */
export interface AccessEntry {
  method: string;
  url: string;
  access: Access;
}

function declareAccess(route: RouteOptions): Access {
  const config = (route.config ?? {}) as { access?: Access };
  if (!config.access && PUBLIC_PREFIXES.some((p) => route.url.startsWith(p))) {
    route.config = { ...config, access: 'public' };
    return 'public';
  }
  if (!config.access) {
    throw new Error(`Route ${String(route.method)} ${route.url} declares no config.access`);
  }
  if (config.access !== 'public' && route.schema) {
    route.schema = { ...route.schema, security: [{ bearerAuth: [] }] } as typeof route.schema;
  }
  return config.access;
}

/** Registers the access check on `app`; `table` receives every route added afterwards. */
export function registerAuth(app: App, authenticate: Authenticate, table: AccessEntry[]): void {
  app.decorateRequest('actor', null);
  app.addHook('onRoute', (route) => {
    const access = declareAccess(route);
    for (const method of [route.method].flat()) {
      table.push({ method, url: route.url, access });
    }
  });
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (!access || access === 'public') {
      return;
    }
    const actor = await authenticate(request.headers.authorization, requestContext(request));
    if (!hasRole(actor.role, access)) {
      throw new PermissionError(`This action needs the ${access} role`);
    }
    request.actor = actor;
  });
}
