/** The Fastify instance type every route module registers on (TypeBox type provider). */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

import type { Actor, Role } from '../shared/roles.ts';

/** The app as route modules see it. */
export type App = FastifyInstance<Server, IncomingMessage, ServerResponse, FastifyBaseLogger, TypeBoxTypeProvider>;

/** Who may call a route: nobody needs a token (`public`) or at least this role. */
export type Access = 'public' | Role;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required on every route; registration fails without it (fail closed). */
    access?: Access;
  }
  interface FastifyRequest {
    /** Set by the auth hook on authenticated routes. */
    actor: Actor | null;
  }
}
