/** Who may see and change which user (admin manages everyone; others only themselves). */
import { PermissionError } from '../../errors.ts';
import { type Actor, hasRole, Roles } from '../../shared/roles.ts';

/** Throws unless `actor` may manage users. */
export function assertCanManageUsers(actor: Actor): void {
  if (!hasRole(actor.role, Roles.admin)) {
    throw new PermissionError('Only admins can manage users');
  }
}

/** Throws unless `actor` may read user `id`. */
export function assertCanViewUser(actor: Actor, id: number): void {
  if (actor.id !== id && !hasRole(actor.role, Roles.admin)) {
    throw new PermissionError('You can only view your own user');
  }
}
