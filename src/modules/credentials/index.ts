/** Public surface of the credentials module. */
export { CREDENTIAL_TYPES, type CredentialType } from './credentials.material.ts';
export { createCredentialsRepo } from './credentials.repo.ts';
export { credentialsRoutes, toCredentialResponse } from './credentials.routes.ts';
export { type CredentialReferences, type CredentialsService, createCredentialsService, type ResolvedCredential, secretsOf } from './credentials.service.ts';
