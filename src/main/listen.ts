/** Starts HTTP listeners: the gateway (every service) and, optionally, one per service port. */
import { buildApp } from '../app.ts';
import type { Deps } from '../deps.ts';
import type { App } from '../http/types.ts';
import { SERVICE_NAMES, SERVICE_PORT_OFFSETS, type ServiceName } from '../services.ts';

/** One listener to start. */
export interface ListenerPlan {
  name: string;
  port: number;
  services: readonly ServiceName[];
}

/** The gateway on `port` serving `services`, plus each service on port + offset when asked. */
export function planListeners(port: number, services: readonly ServiceName[], servicePorts: boolean): ListenerPlan[] {
  const plans: ListenerPlan[] = [{ name: 'gateway', port, services }];
  if (servicePorts) {
    for (const name of SERVICE_NAMES.filter((s) => services.includes(s))) {
      // Port 0 means "any free port" for every listener (tests).
      plans.push({ name, port: port === 0 ? 0 : port + SERVICE_PORT_OFFSETS[name], services: [name] });
    }
  }
  return plans;
}

/** Builds and starts every planned listener; returns them and a function closing them all. */
export async function startListeners(deps: Deps, plans: ListenerPlan[]): Promise<{ apps: Array<{ plan: ListenerPlan; app: App; url: string }>; close: () => Promise<void> }> {
  const apps: Array<{ plan: ListenerPlan; app: App; url: string }> = [];
  const close = async () => {
    await Promise.all(apps.map(({ app }) => app.close()));
  };
  try {
    for (const plan of plans) {
      const app = await buildApp(deps, { name: plan.name, services: plan.services });
      const url = await app.listen({ host: deps.config.http.host, port: plan.port });
      apps.push({ plan, app, url });
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { apps, close };
}
