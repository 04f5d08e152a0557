/**
 * The credentials vault. Secrets are sealed (AES-256-GCM, per-record data key wrapped by the
 * master key) before they reach the repository and are write-only: nothing but `resolve`, an
 * in-process module API for the executor, ever opens them.
 */
import type { CredentialRow, Db } from '../../db/schema.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors.ts';
import type { Clock } from '../../shared/clock.ts';
import { type Keyring, open, rewrap, seal } from '../../shared/crypto-box.ts';
import type { Actor } from '../../shared/roles.ts';
import type { AuditService } from '../audit/index.ts';
import { checkMaterial, type CredentialType, SECRET_FIELDS, type SecretField, type SecretMaterial } from './credentials.material.ts';
import type { CredentialsRepo, CredentialWrite } from './credentials.repo.ts';

/** Input of POST /credentials. */
export interface CredentialCreateInput extends SecretMaterial {
  name: string;
  type: CredentialType;
  username?: string;
  domain?: string;
  auth?: 'ntlm' | 'basic';
  description?: string;
}

/** Input of PUT /credentials/{id}: omitted fields stay; `null` clears an optional one. */
export type CredentialUpdateInput = {
  name?: string;
  description?: string;
  username?: string | null;
  domain?: string | null;
  auth?: 'ntlm' | 'basic' | null;
} & Partial<Record<SecretField, string | null>>;

/** Decrypted material for the executor (in-process only). */
export interface ResolvedCredential extends SecretMaterial {
  id: number;
  name: string;
  type: CredentialType;
  username: string | null;
  domain: string | null;
  auth: 'ntlm' | 'basic' | null;
}

/** The secret values of a resolved credential (what output masking must hide). */
export function secretsOf(credential: ResolvedCredential): string[] {
  return SECRET_FIELDS.map((f) => credential[f]).filter((v): v is string => typeof v === 'string' && v.length > 0);
}

/** Who still uses a credential (implemented by the targets module). */
export interface CredentialReferences {
  targetsUsing(credentialId: number): Promise<number[]>;
  /** The winrm targets over plain HTTP (no use_tls) that use it: Basic must not go there. */
  plainHttpWinrmTargetsUsing(credentialId: number): Promise<number[]>;
  /** Detaches the credential from every target inside `tx`. */
  detach(credentialId: number, tx: Parameters<CredentialsRepo['delete']>[1]): Promise<void>;
}

/** Builds the credentials service. */
export function createCredentialsService(deps: { db: Db; repo: CredentialsRepo; keyring: Keyring; audit: AuditService; clock: Clock; references: CredentialReferences }) {
  const { db, repo, keyring, audit, clock, references } = deps;

  async function getRow(id: number): Promise<CredentialRow> {
    const row = await repo.findById(id);
    if (!row) {
      throw new NotFoundError(`Credential ${id} not found`);
    }
    return row;
  }

  /** A 400 on `auth` when winrm targets reach their host over plain HTTP with this credential (Basic there sends the password in clear). */
  async function refuseBasicOverHttp(id: number): Promise<void> {
    const targets = await references.plainHttpWinrmTargetsUsing(id);
    if (targets.length > 0) {
      throw new ValidationError(
        `auth: Basic over plain HTTP would send the password in clear, and winrm target(s) ${targets.join(', ')} use this credential without use_tls; switch them to HTTPS first, or keep NTLM`,
        'auth',
      );
    }
  }

  function pickSecrets(input: Partial<Record<SecretField, string | null>>): SecretMaterial {
    const out: SecretMaterial = {};
    for (const field of SECRET_FIELDS) {
      const value = input[field];
      if (typeof value === 'string' && value.length > 0) {
        out[field] = value;
      }
    }
    return out;
  }

  /** Validates the material for `type` and seals the secrets. */
  function buildWrite(type: CredentialType, plain: { name: string; username: string | null; domain: string | null; auth: string | null; description: string }, secrets: SecretMaterial): CredentialWrite {
    const auth = type === 'winrm' ? (plain.auth ?? 'ntlm') : plain.auth;
    const derived = checkMaterial(type, { username: plain.username, domain: plain.domain, auth }, secrets);
    const sealed = seal(keyring, secrets, 'credential');
    return {
      ...plain,
      type,
      auth,
      secret_ciphertext: sealed.envelope,
      key_id: sealed.keyId,
      secret_fields: Object.keys(secrets).sort(),
      public_key_fingerprint: derived.publicKeyFingerprint,
      certificate_info: derived.certificateInfo,
    };
  }

  /** A credential's type and, for winrm, its auth scheme — no secret is opened; a 400 naming `field` when it does not exist. */
  async function kindOf(id: number, field: string): Promise<{ type: CredentialType; auth: ResolvedCredential['auth'] }> {
    const row = await repo.findById(id);
    if (!row) {
      throw new ValidationError(`${field}: credential ${id} does not exist`, field);
    }
    return { type: row.type as CredentialType, auth: row.auth as ResolvedCredential['auth'] };
  }

  return {
    async list(_actor: Actor, query: { page: number; limit: number; type?: string; search?: string }) {
      return repo.list({ type: query.type, search: query.search, offset: (query.page - 1) * query.limit, limit: query.limit });
    },

    get: (_actor: Actor, id: number) => getRow(id),

    async create(actor: Actor, input: CredentialCreateInput): Promise<CredentialRow> {
      const plain = { name: input.name, username: input.username ?? null, domain: input.domain ?? null, auth: input.auth ?? null, description: input.description ?? '' };
      const write = buildWrite(input.type, plain, pickSecrets(input));
      return db.transaction().execute(async (tx) => {
        const row = await repo.insert(write, actor.id, tx);
        await audit.record(actor, 'credential.create', { type: 'credential', id: row.id }, { name: row.name, type: row.type, secret_fields: row.secret_fields }, tx);
        return row;
      });
    },

    async update(actor: Actor, id: number, input: CredentialUpdateInput): Promise<CredentialRow> {
      const current = await getRow(id);
      const secrets: SecretMaterial = { ...open<SecretMaterial>(keyring, current.secret_ciphertext, 'credential') };
      for (const field of SECRET_FIELDS) {
        if (input[field] === null) {
          delete secrets[field];
        } else if (typeof input[field] === 'string') {
          secrets[field] = input[field];
        }
      }
      const pick = <T>(value: T | undefined, fallback: T) => (value === undefined ? fallback : value);
      const plain = {
        name: pick(input.name, current.name),
        username: pick(input.username, current.username),
        domain: pick(input.domain, current.domain),
        auth: pick(input.auth, current.auth),
        description: pick(input.description, current.description),
      };
      const write = buildWrite(current.type as CredentialType, plain, secrets);
      if (current.type === 'winrm' && plain.auth === 'basic') {
        await refuseBasicOverHttp(id);
      }
      const changedSecrets = SECRET_FIELDS.filter((f) => input[f] !== undefined);
      return db.transaction().execute(async (tx) => {
        const row = await repo.update(id, write, clock.now(), tx);
        if (!row) {
          throw new NotFoundError(`Credential ${id} not found`);
        }
        const fields = Object.keys(input).filter((k) => !(SECRET_FIELDS as readonly string[]).includes(k));
        await audit.record(actor, 'credential.update', { type: 'credential', id }, { name: row.name, fields, secret_fields_changed: changedSecrets }, tx);
        return row;
      });
    },

    /** Deletes; a credential still used by targets is a 409 unless `force` detaches it first. */
    async remove(actor: Actor, id: number, force: boolean): Promise<void> {
      const current = await getRow(id);
      const targetIds = await references.targetsUsing(id);
      if (targetIds.length > 0 && !force) {
        throw new ConflictError(`Credential ${id} is used by ${targetIds.length} target(s); detach them or use ?force=true`, undefined, {
          details: { target_ids: targetIds },
        });
      }
      await db.transaction().execute(async (tx) => {
        if (targetIds.length > 0) {
          await references.detach(id, tx);
        }
        await repo.delete(id, tx);
        await audit.record(actor, 'credential.delete', { type: 'credential', id }, { name: current.name, detached_target_ids: targetIds }, tx);
      });
    },

    /** Decrypted material for in-process use by the executor; never exposed over HTTP. */
    async resolve(id: number): Promise<ResolvedCredential> {
      const row = await getRow(id);
      const secrets = open<SecretMaterial>(keyring, row.secret_ciphertext, 'credential');
      return { id: row.id, name: row.name, type: row.type as CredentialType, username: row.username, domain: row.domain, auth: row.auth as ResolvedCredential['auth'], ...secrets };
    },

    /** Re-wraps every record's data key under the current master key; returns how many changed. */
    async rewrapAll(): Promise<number> {
      let changed = 0;
      for (;;) {
        const batch = await repo.findNotWrappedBy(keyring.current.id, 100);
        if (batch.length === 0) {
          return changed;
        }
        for (const row of batch) {
          const next = rewrap(keyring, row.secret_ciphertext);
          await repo.setEnvelope(row.id, row.secret_ciphertext, next.envelope, next.keyId);
          changed++;
        }
      }
    },

    /** Throws a 400 naming `field` unless credential `id` exists; returns its type. */
    async typeOf(id: number, field: string): Promise<CredentialType> {
      return (await kindOf(id, field)).type;
    },
    kindOf,
  };
}

/** The credentials service. */
export type CredentialsService = ReturnType<typeof createCredentialsService>;
