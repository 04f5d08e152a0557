/** Public surface of the auth module. */
export { createAuthRepo } from './auth.repo.ts';
export { authRoutes } from './auth.routes.ts';
export { type AuthService, createAuthService, type TokenPair } from './auth.service.ts';
export { createTokenCodec, type TokenCodec } from './auth.tokens.ts';
