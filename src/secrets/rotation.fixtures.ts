/**
 * Shared by the master key rotation tests (rotation.*.test.ts): a test app per describe block,
 * credentials and secret settings to rotate, readers of the stored envelopes and key files, and
 * second sets of services sealing with another keyring (as the admin command runs them).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before } from 'node:test';

import { createTestContext, type TestContext, unique } from '../../test/app.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/schema.ts';
import { createDeps, type Deps } from '../deps.ts';
import { createLogger } from '../logging.ts';
import { createCredentialsRepo, type CredentialsService, createCredentialsService, type ResolvedCredential } from '../modules/credentials/index.ts';
import { createCredentialReferences } from '../modules/targets/index.ts';
import { systemClock } from '../shared/clock.ts';
import { type Keyring, type MasterKey, parseMasterKey } from '../shared/crypto-box.ts';
import { keyFiles } from './keyring.ts';

/** The secret setting the tests seal next to the credentials. */
export const SMTP_SETTING = 'smtp_password';

/** A credentials row as stored: the sealed envelope and the id of the key that wraps it. */
export interface StoredRow {
  id: number;
  secret_ciphertext: string;
  key_id: string;
}

/** The running app of a describe block and the paths of its embedded key files. */
export interface RotationApp {
  readonly ctx: TestContext;
  readonly files: ReturnType<typeof keyFiles>;
}

/**
 * Starts a test app in the calling describe block's `before` (with the OPSCONDUCTOR_* settings in
 * `env`) and closes it in its `after`. Read `ctx` and `files` inside tests.
 */
export function rotationApp(env?: Record<string, string>): RotationApp {
  let ctx: TestContext | undefined;
  before(async () => {
    ctx = await createTestContext({ env });
  });
  after(() => ctx?.close());
  const started = (): TestContext => {
    assert.ok(ctx, 'the test app is started in before()');
    return ctx;
  };
  return {
    get ctx() {
      return started();
    },
    get files() {
      return keyFiles(started().dataDir);
    },
  };
}

/** A second set of services over the same database, sealing with `keyring` (as the admin command does). */
export function depsWith(ctx: TestContext, keyring?: Keyring, config: Config = ctx.config): Promise<Deps> {
  return createDeps(config, { logger: createLogger('silent'), database: ctx.deps.database, migrate: false, queue: false, keyring });
}

/** A credentials service over `db` sealing with `keyring`; `repo` defaults to a plain one over `db`. */
export function credentialsServiceWith(ctx: TestContext, db: Db, keyring: Keyring, repo = createCredentialsRepo(db)): CredentialsService {
  return createCredentialsService({ db, repo, keyring, audit: ctx.deps.audit, clock: systemClock, references: createCredentialReferences(db) });
}

/** Creates a mix of credentials over HTTP; returns their ids. */
export async function storeCredentials(ctx: TestContext, count: number): Promise<number[]> {
  const kinds = [
    () => ({ type: 'password', username: 'svc', password: `pw-${unique()}` }),
    () => ({ type: 'api_token', token: `tok-${unique()}-${unique()}` }),
    () => ({ type: 'winrm', username: 'Administrator', password: `win-${unique()}`, domain: 'CORP' }),
    () => ({ type: 'ssh', username: 'deploy', password: `ssh-${unique()}` }),
  ];
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const payload = { name: unique('rot'), ...(kinds[i % kinds.length] as () => Record<string, unknown>)() };
    const res = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload });
    assert.equal(res.statusCode, 200, res.body);
    ids.push(res.json().id);
  }
  return ids;
}

/** Stores `count` credentials (see storeCredentials) and the SMTP setting with `smtpPassword`; returns the credential ids. */
export async function storeSecrets(ctx: TestContext, count: number, smtpPassword: string): Promise<number[]> {
  const ids = await storeCredentials(ctx, count);
  await ctx.deps.secretSettings.set(SMTP_SETTING, { password: smtpPassword });
  return ids;
}

/** Every stored credential, by id. */
export async function credentialRows(ctx: TestContext): Promise<StoredRow[]> {
  return ctx.deps.db.selectFrom('credentials').select(['id', 'secret_ciphertext', 'key_id']).orderBy('id').execute();
}

/** Every sealed setting, by key. */
export async function settingRows(ctx: TestContext): Promise<Array<{ key: string; secret_ciphertext: string | null; key_id: string | null }>> {
  return ctx.deps.db.selectFrom('settings').select(['key', 'secret_ciphertext', 'key_id']).where('secret_ciphertext', 'is not', null).orderBy('key').execute();
}

/** The credentials `ids` as `deps` opens them. */
export async function resolveAll(deps: Deps, ids: number[]): Promise<Map<number, ResolvedCredential>> {
  const out = new Map<number, ResolvedCredential>();
  for (const id of ids) {
    out.set(id, await deps.credentials.resolve(id));
  }
  return out;
}

/** Fields 3..5 (iv, tag, ciphertext) of an envelope. */
export const sealedBody = (envelope: string): string[] => envelope.split('.').slice(3);

/** The master key in the key file at `path`. */
export const readKey = (path: string): MasterKey => parseMasterKey(readFileSync(path, 'utf8'));
