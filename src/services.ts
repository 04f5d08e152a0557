/**
 * The guide's services: name, port offset from the gateway port, and the routes each serves.
 * `opsconductor start` serves all of them on the gateway and each on its own port.
 */
import type { Deps } from './deps.ts';
import type { App } from './http/types.ts';
import { auditRoutes } from './modules/audit/index.ts';
import { authRoutes } from './modules/auth/index.ts';
import { credentialsRoutes } from './modules/credentials/index.ts';
import { discoveryRoutes } from './modules/discovery/index.ts';
import { executorRoutes } from './modules/executor/index.ts';
import { filesRoutes } from './modules/files/index.ts';
import { jobsRoutes } from './modules/jobs/index.ts';
import { librariesRoutes } from './modules/libraries/index.ts';
import { notificationsRoutes } from './modules/notifications/index.ts';
import { runsRoutes } from './modules/runs/index.ts';
import { schedulerRoutes } from './modules/scheduler/index.ts';
import { targetGroupsRoutes, targetsRoutes } from './modules/targets/index.ts';
import { usersRoutes } from './modules/users/index.ts';

/** Service name → offset from the gateway port (guide: 3001 auth … 3011 step libraries). */
export const SERVICE_PORT_OFFSETS = {
  auth: 1,
  users: 2,
  credentials: 4,
  targets: 5,
  jobs: 6,
  executor: 7,
  scheduler: 8,
  notification: 9,
  discovery: 10,
  libraries: 11,
} as const;

/** A service name. */
export type ServiceName = keyof typeof SERVICE_PORT_OFFSETS;
/** Every service, in port order. */
export const SERVICE_NAMES = Object.keys(SERVICE_PORT_OFFSETS) as ServiceName[];

/** Routes each service owns; services whose issue has not landed yet serve only /health. */
const SERVICE_ROUTES: Record<ServiceName, (app: App, deps: Deps) => void> = {
  auth: (app, deps) => {
    authRoutes(app, deps);
    auditRoutes(app, deps);
  },
  users: (app, deps) => usersRoutes(app, deps),
  credentials: (app, deps) => credentialsRoutes(app, deps),
  targets: (app, deps) => {
    targetsRoutes(app, deps);
    targetGroupsRoutes(app, deps);
  },
  jobs: (app, deps) => {
    jobsRoutes(app, deps);
    runsRoutes(app, deps);
  },
  executor: (app, deps) => {
    executorRoutes(app, deps);
    filesRoutes(app, deps);
  },
  scheduler: (app, deps) => schedulerRoutes(app, deps),
  notification: (app, deps) => notificationsRoutes(app, deps),
  discovery: (app, deps) => discoveryRoutes(app, deps),
  libraries: (app, deps) => librariesRoutes(app, deps),
};

/** Registers the routes of `service` on `app`. */
export function registerServiceRoutes(app: App, service: ServiceName, deps: Deps): void {
  SERVICE_ROUTES[service](app, deps);
}

/** Parses a `--services a,b` list; throws naming unknown names. */
export function parseServiceList(list: string): ServiceName[] {
  const names = list.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = names.filter((n) => !(n in SERVICE_PORT_OFFSETS));
  if (unknown.length > 0 || names.length === 0) {
    throw new Error(`Unknown service(s): ${unknown.join(', ') || '(none given)'}; choose from ${SERVICE_NAMES.join(', ')}`);
  }
  return [...new Set(names)] as ServiceName[];
}
