/** Target inventory: create, read, update, delete with validation; every change audited. */
import type { Db } from '../../db/schema.ts';
import { NotFoundError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import type { Actor } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import type { CredentialsService } from '../credentials/index.ts';
import type { GroupsRepo } from './target-groups.repo.ts';
import { checkCredentialFits, checkHost, checkTls, checkTlsOptions, checkWinrmAuth, defaultPort, type TargetTls } from './targets.rules.ts';
import type { Protocol, TargetCreateBody, TargetUpdateBody } from './targets.schemas.ts';
import type { TargetFilter, TargetsRepo, TargetWithGroups, TargetWrite } from './targets.repo.ts';

/** Builds the targets service. */
export function createTargetsService(deps: { db: Db; repo: TargetsRepo; groups: GroupsRepo; credentials: CredentialsService; audit: AuditService; clock: Clock }) {
  const { db, repo, groups, credentials, audit, clock } = deps;

  async function getRow(id: number): Promise<TargetWithGroups> {
    const row = await repo.findById(id);
    if (!row) {
      throw new NotFoundError(`Target ${id} not found`);
    }
    return row;
  }

  /**
   * Validates a complete target and fills defaults; `tlsConflict` is the TLS option the caller set,
   * and `authConflict` the field to name when the credential would use Basic over plain HTTP.
   */
  async function validate(
    input: Omit<TargetWrite, 'port'> & { port: number | undefined },
    tlsConflict?: keyof TargetTls,
    authConflict: 'credential_id' | 'use_tls' = 'credential_id',
  ): Promise<TargetWrite> {
    const protocol = input.protocol as Protocol;
    checkTls(protocol, input.use_tls);
    const tls = checkTlsOptions(input.use_tls, { tls_verify: input.tls_verify, tls_fingerprint: input.tls_fingerprint }, tlsConflict);
    if (input.credential_id !== null) {
      const { type, auth } = await credentials.kindOf(input.credential_id, 'credential_id');
      checkCredentialFits(protocol, type);
      checkWinrmAuth({ protocol, useTls: input.use_tls, auth }, authConflict);
    }
    return { ...input, ...tls, host: checkHost(input.host), port: input.port ?? defaultPort(protocol, input.use_tls) };
  }

  /** Validates a create body with the defaults of a new target. */
  const validateNew = (input: TargetCreateBody) =>
    validate({
      name: input.name,
      host: input.host,
      port: input.port,
      os_type: input.os_type,
      protocol: input.protocol,
      use_tls: input.use_tls ?? false,
      tls_verify: input.tls_verify ?? true,
      tls_fingerprint: input.tls_fingerprint ?? null,
      credential_id: input.credential_id ?? null,
      tags: input.tags ?? [],
      description: input.description ?? '',
    });

  return {
    async list(_actor: Actor, filter: Omit<TargetFilter, 'offset' | 'limit'> & { page: number; limit: number }) {
      return repo.list({ ...filter, offset: (filter.page - 1) * filter.limit, limit: filter.limit });
    },

    get: (_actor: Actor, id: number) => getRow(id),

    async create(actor: Actor, input: TargetCreateBody): Promise<TargetWithGroups> {
      const write = await validateNew(input);
      const id = await db.transaction().execute(async (tx) => {
        const created = await repo.insert(write, actor.id, tx);
        await audit.record(actor, 'target.create', { type: 'target', id: created }, { name: write.name, host: write.host, protocol: write.protocol }, tx);
        return created;
      });
      return getRow(id);
    },

    async update(actor: Actor, id: number, input: TargetUpdateBody): Promise<TargetWithGroups> {
      const current = await getRow(id);
      const protocol = input.protocol ?? current.protocol;
      // TLS means nothing over ssh: switching to ssh drops it unless the caller says otherwise.
      const useTls = input.use_tls ?? (protocol === 'ssh' ? false : current.use_tls);
      // Moving to another protocol without a port moves to that protocol's standard port.
      const keptPort = current.port === defaultPort(current.protocol as Protocol, current.use_tls) ? undefined : current.port;
      // Without TLS its options fall back to the defaults, unless the caller sets them (then a 400).
      const keptTls: TargetTls = useTls ? current : { tls_verify: true, tls_fingerprint: null };
      const write = await validate({
        name: input.name ?? current.name,
        host: input.host ?? current.host,
        port: input.port ?? keptPort,
        os_type: input.os_type ?? current.os_type,
        protocol,
        use_tls: useTls,
        tls_verify: input.tls_verify ?? keptTls.tls_verify,
        tls_fingerprint: input.tls_fingerprint === undefined ? keptTls.tls_fingerprint : input.tls_fingerprint,
        credential_id: input.credential_id === undefined ? current.credential_id : input.credential_id,
        tags: input.tags ?? current.tags,
        description: input.description ?? current.description,
      }, input.tls_fingerprint === undefined ? 'tls_verify' : 'tls_fingerprint', input.use_tls === false && input.credential_id === undefined ? 'use_tls' : 'credential_id');
      const endpointChanged = write.host !== current.host || write.port !== current.port || write.protocol !== current.protocol;
      await db.transaction().execute(async (tx) => {
        // A new endpoint is a new machine: forget its pinned key and last status.
        const extra = endpointChanged ? { host_key_fingerprint: null, status: 'unknown' } : {};
        await repo.update(id, { ...write, ...extra }, clock.now(), tx);
        await audit.record(actor, 'target.update', { type: 'target', id }, { fields: Object.keys(input).sort(), endpoint_changed: endpointChanged }, tx);
      });
      return getRow(id);
    },

    async remove(actor: Actor, id: number): Promise<void> {
      const current = await getRow(id);
      await db.transaction().execute(async (tx) => {
        await repo.delete(id, tx);
        await audit.record(actor, 'target.delete', { type: 'target', id }, { name: current.name, host: current.host }, tx);
      });
    },

    /** Forgets the pinned SSH host key so the next connection pins the new one. */
    async resetHostKey(actor: Actor, id: number): Promise<TargetWithGroups> {
      const current = await getRow(id);
      await db.transaction().execute(async (tx) => {
        await repo.update(id, { host_key_fingerprint: null, status: 'unknown' }, clock.now(), tx);
        await audit.record(actor, 'target.host_key_reset', { type: 'target', id }, { previous_fingerprint: current.host_key_fingerprint }, tx);
      });
      return getRow(id);
    },

    /**
     * Creates one imported row with its group membership in one transaction: all of it or none.
     * A name that already exists is skipped (imports can be re-run).
     */
    async importRow(actor: Actor, input: TargetCreateBody & { group?: string }): Promise<number | 'skipped'> {
      const write = await validateNew(input);
      return db.transaction().execute(async (tx) => {
        if ((await repo.findIdByName(write.name, tx)) !== undefined) {
          return 'skipped' as const;
        }
        const id = await repo.insert(write, actor.id, tx);
        if (input.group) {
          await groups.addMember(await groups.ensureByName(input.group, tx), id, tx);
        }
        await audit.record(actor, 'target.create', { type: 'target', id }, { name: write.name, host: write.host, protocol: write.protocol, imported: true }, tx);
        return id;
      });
    },

    /** The targets among `ids` that still exist. */
    findMany: (ids: readonly number[]) => repo.findByIds([...new Set(ids)]),

    /** Resolves target ids for a run; unknown ids are a 400 naming `field`. */
    async getMany(ids: readonly number[], field = 'target_ids'): Promise<TargetWithGroups[]> {
      const unique = [...new Set(ids)];
      const rows = await repo.findByIds(unique);
      const missing = unique.filter((id) => !rows.some((r) => r.id === id));
      if (missing.length > 0) {
        throw new ValidationError(`${field}: unknown target id(s) ${missing.join(', ')}`, field, { details: { target_ids: missing } });
      }
      return rows;
    },
  };
}

/** The targets service. */
export type TargetsService = ReturnType<typeof createTargetsService>;
