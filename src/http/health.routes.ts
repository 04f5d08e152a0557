/** GET /health in the guide's HealthResponse shape; 503 when the database does not answer. */
import { Type } from 'typebox';

import type { Database } from '../db/database.ts';
import { StringEnum } from './schemas.ts';
import type { App } from './types.ts';

const HealthCheck = Type.Object({
  name: Type.String(),
  status: StringEnum(['healthy', 'unhealthy'] as const),
  message: Type.String(),
  duration_ms: Type.Number(),
});

const HealthResponse = Type.Object({
  service: Type.String(),
  status: StringEnum(['healthy', 'unhealthy'] as const),
  version: Type.String(),
  checks: Type.Array(HealthCheck),
});

const PING_TIMEOUT_MS = 2000;

async function checkDatabase(database: Database) {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      database.ping(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), PING_TIMEOUT_MS))),
    ]);
    return { name: 'database', status: 'healthy' as const, message: `${database.kind} reachable`, duration_ms: Math.round(performance.now() - started) };
  } catch {
    return { name: 'database', status: 'unhealthy' as const, message: `${database.kind} not reachable`, duration_ms: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/** Registers /health for `service` on `app`. */
export function healthRoutes(app: App, deps: { database: Database; service: string; version: string }): void {
  app.get('/health', {
    config: { access: 'public' },
    schema: { tags: ['health'], summary: 'Service health', response: { 200: HealthResponse, 503: HealthResponse } },
    handler: async (_request, reply) => {
      const checks = [await checkDatabase(deps.database)];
      const status = checks.every((c) => c.status === 'healthy') ? ('healthy' as const) : ('unhealthy' as const);
      return reply.status(status === 'healthy' ? 200 : 503).send({ service: deps.service, status, version: deps.version, checks });
    },
  });
}
