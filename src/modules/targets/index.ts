/** Public surface of the targets module. */
import type { Queryable } from '../../db/schema.ts';
import type { CredentialReferences } from '../credentials/index.ts';
import { createTargetsRepo } from './targets.repo.ts';

export { createGroupsRepo } from './target-groups.repo.ts';
export { targetGroupsRoutes } from './target-groups.routes.ts';
export { createGroupsService, type GroupsService } from './target-groups.service.ts';
export { createTargetConnector, type TargetConnector, type TargetTestResult, tlsReport } from './targets.connect.ts';
export { createTargetsRepo, type TargetWithGroups } from './targets.repo.ts';
export { targetsRoutes, toTargetResponse } from './targets.routes.ts';
export { createTargetsService, type TargetsService } from './targets.service.ts';

/** The credentials module's view of which targets use a credential. */
export function createCredentialReferences(db: Queryable): CredentialReferences {
  const repo = createTargetsRepo(db);
  return {
    targetsUsing: (credentialId) => repo.idsUsingCredential(credentialId),
    plainHttpWinrmTargetsUsing: (credentialId) => repo.idsUsingCredential(credentialId, { protocol: 'winrm', useTls: false }),
    detach: (credentialId, tx) => repo.detachCredential(credentialId, tx ?? db),
  };
}
