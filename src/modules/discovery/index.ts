/** Public surface of the discovery module. */
export { createDiscoveryRepo, type DiscoveryRepo } from './discovery.repo.ts';
export { discoveryRoutes } from './discovery.routes.ts';
export { createDiscoveryService, DEFAULT_PORTS, type DiscoveryService, estimateMs, humanDuration } from './discovery.service.ts';
export { LOST_S, startDiscoveryRunner } from './discovery.task.ts';
