/** Public surface of the audit module. */
export { createAuditRepo } from './audit.repo.ts';
export { auditRoutes } from './audit.routes.ts';
export { type AuditResource, type AuditService, type AuditSource, createAuditService } from './audit.service.ts';
