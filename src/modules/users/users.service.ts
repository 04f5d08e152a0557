/**
 * User management. Admins manage everyone; anyone can read and edit their own email and password.
 * The last active admin can never be deleted, disabled or demoted. Changing a role, a password or
 * the active flag bumps token_version, which invalidates every token the user holds.
 */
import type { Db, Queryable, UserRow } from '../../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import { generatePassword, hashPassword, verifyPassword } from '../../shared/passwords.ts';
import { type Actor, type Role, Roles } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import { assertCanManageUsers, assertCanViewUser } from './users.policy.ts';
import type { UserPatch, UsersRepo } from './users.repo.ts';

/** Input of POST /users. */
export interface UserCreateInput {
  username: string;
  email: string;
  password: string;
  role: Role;
}

/** Input of PUT /users/{id}. */
export interface UserUpdateInput {
  email?: string;
  role?: Role;
  is_active?: boolean;
  password?: string;
}

/** Input of PUT /users/me. */
export interface SelfUpdateInput {
  email?: string;
  current_password?: string;
  new_password?: string;
}

/** Builds the users service. */
export function createUsersService(deps: { db: Db; repo: UsersRepo; audit: AuditService; clock: Clock }) {
  const { db, repo, audit, clock } = deps;

  async function getRow(id: number, q?: Queryable): Promise<UserRow> {
    const row = await repo.findById(id, q);
    if (!row) {
      throw new NotFoundError(`User ${id} not found`);
    }
    return row;
  }

  /** Throws when the change would leave no active admin; call inside the changing transaction. */
  async function guardLastAdmin(tx: Queryable, user: UserRow, after: { role: string; isActive: boolean } | 'deleted'): Promise<void> {
    const staysAdmin = after !== 'deleted' && after.role === Roles.admin && after.isActive;
    if (user.role !== Roles.admin || !user.is_active || staysAdmin) {
      return;
    }
    const admins = await repo.lockActiveAdmins(tx);
    if (admins.every((id) => id === user.id)) {
      throw new ConflictError('The last active admin cannot be deleted, disabled or demoted', undefined, {
        details: { user_id: user.id },
      });
    }
  }

  async function applyUpdate(actor: Actor, id: number, patch: UserPatch, action: string, changed: Record<string, unknown>): Promise<UserRow> {
    return db.transaction().execute(async (tx) => {
      const user = await getRow(id, tx);
      await guardLastAdmin(tx, user, { role: patch.role ?? user.role, isActive: patch.is_active ?? user.is_active });
      const updated = await repo.update(id, patch, clock.now(), tx);
      await audit.record(actor, action, { type: 'user', id }, changed, tx);
      return updated ?? user;
    });
  }

  const service = {
    async list(actor: Actor, query: { page: number; limit: number; search?: string }) {
      assertCanManageUsers(actor);
      return repo.list({ search: query.search, offset: (query.page - 1) * query.limit, limit: query.limit });
    },

    async get(actor: Actor, id: number): Promise<UserRow> {
      assertCanViewUser(actor, id);
      return getRow(id);
    },

    async create(actor: Actor, input: UserCreateInput): Promise<UserRow> {
      assertCanManageUsers(actor);
      const passwordHash = await hashPassword(input.password);
      return db.transaction().execute(async (tx) => {
        const user = await repo.insert({ username: input.username, email: input.email, password_hash: passwordHash, role: input.role }, tx);
        await audit.record(actor, 'user.create', { type: 'user', id: user.id }, { username: user.username, role: user.role }, tx);
        return user;
      });
    },

    async update(actor: Actor, id: number, input: UserUpdateInput): Promise<UserRow> {
      assertCanManageUsers(actor);
      const patch: UserPatch = { email: input.email, role: input.role, is_active: input.is_active };
      if (input.password !== undefined) {
        patch.password_hash = await hashPassword(input.password);
      }
      patch.bumpTokenVersion = input.role !== undefined || input.is_active !== undefined || input.password !== undefined;
      const changed = { fields: Object.keys(input).sort(), role: input.role, is_active: input.is_active };
      return applyUpdate(actor, id, patch, 'user.update', changed);
    },

    async remove(actor: Actor, id: number): Promise<void> {
      assertCanManageUsers(actor);
      await db.transaction().execute(async (tx) => {
        const user = await getRow(id, tx);
        await guardLastAdmin(tx, user, 'deleted');
        await repo.delete(id, tx);
        await audit.record(actor, 'user.delete', { type: 'user', id }, { username: user.username }, tx);
      });
    },

    me: (actor: Actor): Promise<UserRow> => getRow(actor.id),

    /** Own email and password; a new password needs the current one and ends every session. */
    async updateMe(actor: Actor, input: SelfUpdateInput): Promise<UserRow> {
      const patch: UserPatch = { email: input.email };
      if (input.new_password !== undefined) {
        if (input.current_password === undefined) {
          throw new ValidationError('current_password is required to set a new password', 'current_password');
        }
        const user = await getRow(actor.id);
        if (!(await verifyPassword(user.password_hash, input.current_password))) {
          throw new ValidationError('current_password is incorrect', 'current_password');
        }
        patch.password_hash = await hashPassword(input.new_password);
        patch.bumpTokenVersion = true;
      }
      const changed = { fields: Object.keys(input).filter((k) => k !== 'current_password').sort() };
      return applyUpdate(actor, actor.id, patch, input.new_password ? 'user.password_change' : 'user.update', changed);
    },

    /**
     * First start: creates `admin` when there is no user at all. Returns the password only when
     * it was generated here (so the caller can show it once).
     */
    async ensureInitialAdmin(password?: string): Promise<{ created: boolean; generatedPassword?: string }> {
      if (!(await repo.isEmpty())) {
        return { created: false };
      }
      const chosen = password ?? generatePassword();
      try {
        const user = await repo.insert({ username: 'admin', email: 'admin@localhost.localdomain', password_hash: await hashPassword(chosen), role: Roles.admin });
        await audit.record('system', 'user.create', { type: 'user', id: user.id }, { username: 'admin', role: 'admin', initial: true });
      } catch (e) {
        if (e instanceof ConflictError) {
          return { created: false }; // another process created it first
        }
        throw e;
      }
      return { created: true, generatedPassword: password ? undefined : chosen };
    },

    /** Admin CLI: sets a user's password, re-enables them, and ends their sessions (creates `admin` on an empty database). */
    async resetPassword(username: string, password: string): Promise<UserRow> {
      const user = await repo.findByUsername(username);
      if (!user && username === 'admin' && (await repo.isEmpty())) {
        // Right after `migrate`, before any start: this is how an operator picks the first password.
        await service.ensureInitialAdmin(password);
        return service.resetPassword(username, password);
      }
      if (!user) {
        throw new NotFoundError(`User ${username} not found`);
      }
      const patch: UserPatch = { password_hash: await hashPassword(password), is_active: true, bumpTokenVersion: true };
      const updated = await repo.update(user.id, patch, clock.now());
      await audit.record('system', 'user.password_reset', { type: 'user', id: user.id }, { via: 'cli' });
      return updated ?? user;
    },
  };
  return service;
}

/** The users service. */
export type UsersService = ReturnType<typeof createUsersService>;
