/** Routes of the authentication service (guide: Authentication Service, port 3001). */
import { actorOf, requestContext } from '../../http/auth.plugin.ts';
import { MessageResponse } from '../../http/schemas.ts';
import type { App } from '../../http/types.ts';
import { ValidationError } from '../../errors.ts';
import { LoginBody, RefreshBody, TokenResponse, VerifyResponse } from './auth.schemas.ts';
import type { AuthService, TokenPair } from './auth.service.ts';

function toTokenResponse(pair: TokenPair) {
  return {
    access_token: pair.accessToken,
    token_type: 'bearer' as const,
    refresh_token: pair.refreshToken,
    expires_in: pair.expiresIn,
    user: pair.user,
  };
}

function bearer(header: string | undefined): string | undefined {
  return /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
}

/** Registers /auth/* on `app`. */
export function authRoutes(app: App, { auth }: { auth: AuthService }): void {
  const tags = ['auth'];
  app.post('/auth/login', {
    config: { access: 'public' },
    schema: { tags, summary: 'Log in with username and password', body: LoginBody, response: { 200: TokenResponse } },
    handler: async (request) => toTokenResponse(await auth.login(requestContext(request), request.body)),
  });

  app.post('/auth/refresh', {
    config: { access: 'public' },
    schema: { tags, summary: 'Rotate a refresh token for a new token pair', body: RefreshBody, response: { 200: TokenResponse } },
    handler: async (request) => {
      const token = request.body?.refresh_token ?? bearer(request.headers.authorization);
      if (!token) {
        throw new ValidationError('refresh_token is required (body or Authorization: Bearer)', 'refresh_token');
      }
      return toTokenResponse(await auth.refresh(requestContext(request), token));
    },
  });

  app.post('/auth/logout', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Revoke this access token and its session', response: { 200: MessageResponse } },
    handler: async (request) => {
      await auth.logout(actorOf(request));
      return { message: 'Logged out successfully' };
    },
  });

  app.get('/auth/verify', {
    config: { access: 'viewer' },
    schema: { tags, summary: 'Who does this token belong to', response: { 200: VerifyResponse } },
    handler: async (request) => {
      const actor = actorOf(request);
      return { user_id: actor.id, username: actor.username, role: actor.role };
    },
  });
}
