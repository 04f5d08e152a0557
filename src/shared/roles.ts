/**
 * Roles and who is acting. admin ⊇ operator ⊇ viewer: a route that needs `operator` admits
 * admins too. Every access decision in the code goes through {@link hasRole}.
 */

/** The roles, lowest first. */
export const Roles = { viewer: 'viewer', operator: 'operator', admin: 'admin' } as const;
/** A user's role. */
export type Role = (typeof Roles)[keyof typeof Roles];
/** All roles as a list (for schemas). */
export const ROLE_LIST: Role[] = [Roles.viewer, Roles.operator, Roles.admin];

const RANK: Record<Role, number> = { viewer: 1, operator: 2, admin: 3 };

/** Where a request came from; every audit entry carries it. */
export interface RequestContext {
  ip: string;
  requestId: string;
}

/** An authenticated caller. */
export interface Actor extends RequestContext {
  id: number;
  username: string;
  role: Role;
  /** The access token's id and expiry (for logout). */
  tokenId: string;
  tokenExpiresAt: Date;
  /** The login session (refresh token family) the token belongs to. */
  sessionId: string;
}

/** True when `role` is at least `minimum`. */
export function hasRole(role: Role, minimum: Role): boolean {
  return RANK[role] >= RANK[minimum];
}
