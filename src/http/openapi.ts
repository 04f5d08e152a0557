/** OpenAPI 3 document at /openapi.json and interactive docs at /docs, generated from route schemas. */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { RouteOptions } from 'fastify';

import { ErrorResponse } from './schemas.ts';
import type { App } from './types.ts';

/** Documents the error envelope on every route that has response schemas. */
function addErrorResponses(route: RouteOptions): void {
  const response = route.schema?.response as Record<string, unknown> | undefined;
  if (response && !response['4xx']) {
    route.schema = { ...route.schema, response: { ...response, '4xx': ErrorResponse, '5xx': ErrorResponse } };
  }
}

/** Registers the OpenAPI generator and UI; call before any route is added. */
export async function registerOpenApi(app: App, info: { title: string; version: string }): Promise<void> {
  app.addHook('onRoute', addErrorResponses);
  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: { title: info.title, version: info.version, description: 'OpsConductor API. Errors use the ErrorResponse envelope.' },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });
  app.get('/openapi.json', { config: { access: 'public' }, schema: { hide: true } }, () => app.swagger());
}
