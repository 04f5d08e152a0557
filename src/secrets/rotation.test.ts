import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import type { KyselyPlugin } from 'kysely';

import { createTestContext, type TestContext, unique } from '../../test/app.ts';
import { loadConfig, type Config } from '../config.ts';
import { createDeps, type Deps } from '../deps.ts';
import { createLogger } from '../logging.ts';
import { createCredentialsRepo, createCredentialsService, type ResolvedCredential } from '../modules/credentials/index.ts';
import { createCredentialReferences } from '../modules/targets/index.ts';
import { systemClock } from '../shared/clock.ts';
import { createKeyring, generateMasterKey, type Keyring, parseMasterKey, SealError } from '../shared/crypto-box.ts';
import { keyFiles, loadKeyring, MasterKeyError } from './keyring.ts';
import { planRotation, rotate } from './rotation.ts';
import { createSecretSettings } from './secret-settings.ts';

const SMTP_SETTING = 'smtp_password';

interface StoredRow {
  id: number;
  secret_ciphertext: string;
  key_id: string;
}

/** A second set of services over the same database, sealing with `keyring` (as the admin command does). */
function depsWith(ctx: TestContext, keyring?: Keyring, config: Config = ctx.config): Promise<Deps> {
  return createDeps(config, { logger: createLogger('silent'), database: ctx.deps.database, migrate: false, queue: false, keyring });
}

/** Creates a mix of credentials over HTTP; returns their ids. */
async function storeCredentials(ctx: TestContext, count: number): Promise<number[]> {
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

async function credentialRows(ctx: TestContext): Promise<StoredRow[]> {
  return ctx.deps.db.selectFrom('credentials').select(['id', 'secret_ciphertext', 'key_id']).orderBy('id').execute();
}

async function settingRows(ctx: TestContext): Promise<Array<{ key: string; secret_ciphertext: string | null; key_id: string | null }>> {
  return ctx.deps.db.selectFrom('settings').select(['key', 'secret_ciphertext', 'key_id']).where('secret_ciphertext', 'is not', null).orderBy('key').execute();
}

async function resolveAll(deps: Deps, ids: number[]): Promise<Map<number, ResolvedCredential>> {
  const out = new Map<number, ResolvedCredential>();
  for (const id of ids) {
    out.set(id, await deps.credentials.resolve(id));
  }
  return out;
}

/** Fields 3..5 (iv, tag, ciphertext) of an envelope. */
const sealedBody = (envelope: string) => envelope.split('.').slice(3);

const readKey = (path: string) => parseMasterKey(readFileSync(path, 'utf8'));

describe('master key rotation with embedded key files', () => {
  let ctx: TestContext;
  let files: ReturnType<typeof keyFiles>;
  before(async () => {
    ctx = await createTestContext();
    files = keyFiles(ctx.dataDir);
  });
  after(() => ctx.close());

  test('re-wraps every data key under a new master key without touching the ciphertexts', async () => {
    const ids = await storeCredentials(ctx, 6);
    await ctx.deps.secretSettings.set(SMTP_SETTING, { password: 'smtp-secret-value' });
    const oldKey = readKey(files.current);
    assert.equal(oldKey.id, ctx.deps.keyring.current.id);
    assert.equal(existsSync(files.next), false);
    const before = await credentialRows(ctx);
    const settingsBefore = await settingRows(ctx);
    assert.equal(before.length, ids.length);
    assert.ok(settingsBefore.length >= 2, 'jwt_secret and the smtp setting are sealed');
    assert.ok(before.every((r) => r.key_id === oldKey.id));
    const resolvedBefore = await resolveAll(ctx.deps, ids);

    const plan = planRotation(ctx.config);
    const newId = plan.keyring.current.id;
    assert.notEqual(newId, oldKey.id);
    assert.ok(plan.keyring.byId.has(oldKey.id), 'the old key still opens what is not yet re-wrapped');
    assert.equal(readKey(files.next).id, newId, 'the new key is written to master.key.next first');
    assert.equal(statSync(files.next).mode & 0o777, 0o600);
    assert.equal(readKey(files.current).id, oldKey.id, 'master.key is untouched until the rotation completes');

    const deps2 = await depsWith(ctx, plan.keyring);
    try {
      const changed = await rotate(plan, [deps2.credentials, deps2.secretSettings]);
      assert.equal(changed, before.length + settingsBefore.length);
    } finally {
      await deps2.release();
    }

    const afterRows = await credentialRows(ctx);
    assert.deepEqual(
      afterRows.map((r) => r.id),
      before.map((r) => r.id),
    );
    for (const [i, row] of afterRows.entries()) {
      const old = before[i] as StoredRow;
      assert.equal(row.key_id, newId);
      const parts = row.secret_ciphertext.split('.');
      assert.equal(parts[1], newId);
      assert.notEqual(parts[2], old.secret_ciphertext.split('.')[2], 'the data key is wrapped anew');
      assert.deepEqual(sealedBody(row.secret_ciphertext), sealedBody(old.secret_ciphertext), `credential ${row.id}: iv, tag and ciphertext unchanged`);
    }
    const settingsAfter = await settingRows(ctx);
    for (const [i, row] of settingsAfter.entries()) {
      assert.equal(row.key_id, newId, row.key);
      assert.deepEqual(sealedBody(row.secret_ciphertext as string), sealedBody(settingsBefore[i]?.secret_ciphertext as string));
    }

    // Key files: the new key is current, the old one kept as previous, no leftover.
    assert.equal(readKey(files.current).id, newId);
    assert.equal(readKey(files.previous).id, oldKey.id);
    assert.equal(existsSync(files.next), false);
    assert.equal(statSync(files.current).mode & 0o777, 0o600);

    // The new key alone opens everything, credentials and settings alike.
    const onlyNew = createKeyring(readKey(files.current));
    assert.equal(onlyNew.byId.size, 1);
    const deps3 = await depsWith(ctx, onlyNew);
    try {
      assert.deepEqual(await resolveAll(deps3, ids), resolvedBefore);
      assert.deepEqual(await deps3.secretSettings.get(SMTP_SETTING), { password: 'smtp-secret-value' });
    } finally {
      await deps3.release();
    }
    // A process still holding only the old key can no longer open the records.
    await assert.rejects(ctx.deps.credentials.resolve(ids[0] as number), (e: unknown) => e instanceof SealError && e.message.includes(newId));
    // A process started now loads the new key as current and the old one as previous.
    const reloaded = loadKeyring(ctx.config);
    assert.equal(reloaded.current.id, newId);
    assert.ok(reloaded.byId.has(oldKey.id));
  });
});

describe('an interrupted master key rotation is finished by running it again', () => {
  let ctx: TestContext;
  let files: ReturnType<typeof keyFiles>;
  before(async () => {
    ctx = await createTestContext();
    files = keyFiles(ctx.dataDir);
  });
  after(() => ctx.close());

  test('a crash after some rows leaves a readable mix; the next run re-wraps the rest and promotes the key', async () => {
    const ids = await storeCredentials(ctx, 8);
    await ctx.deps.secretSettings.set(SMTP_SETTING, { password: 'smtp-secret-2' });
    const oldId = ctx.deps.keyring.current.id;
    const original = await credentialRows(ctx);
    const resolvedBefore = await resolveAll(ctx.deps, ids);

    // Run 1: the credentials store dies after re-wrapping three rows.
    const plan1 = planRotation(ctx.config);
    const newId = plan1.keyring.current.id;
    const baseRepo = createCredentialsRepo(ctx.deps.db);
    let writes = 0;
    const crashingRepo = {
      ...baseRepo,
      setEnvelope: async (...args: Parameters<typeof baseRepo.setEnvelope>) => {
        if (writes === 3) {
          throw new Error('simulated crash');
        }
        writes++;
        return baseRepo.setEnvelope(...args);
      },
    };
    const crashing = createCredentialsService({
      db: ctx.deps.db,
      repo: crashingRepo,
      keyring: plan1.keyring,
      audit: ctx.deps.audit,
      clock: systemClock,
      references: createCredentialReferences(ctx.deps.db),
    });
    const deps1 = await depsWith(ctx, plan1.keyring);
    try {
      await assert.rejects(rotate(plan1, [crashing, deps1.secretSettings]), /simulated crash/);
    } finally {
      await deps1.release();
    }

    const mid = await credentialRows(ctx);
    assert.equal(mid.filter((r) => r.key_id === newId).length, 3);
    assert.equal(mid.filter((r) => r.key_id === oldId).length, ids.length - 3);
    for (const row of mid) {
      assert.equal(row.secret_ciphertext.split('.')[1], row.key_id);
    }
    assert.ok((await settingRows(ctx)).every((r) => r.key_id === oldId), 'settings were not reached');
    // The key files are untouched: master.key is still the old key, the new one waits in master.key.next.
    assert.equal(readKey(files.current).id, oldId);
    assert.equal(readKey(files.next).id, newId);
    assert.equal(existsSync(files.previous), false);

    // A process started in this state can open every record (both keys are loaded) and still seals under the old key.
    const midDeps = await depsWith(ctx);
    try {
      assert.equal(midDeps.keyring.current.id, oldId);
      assert.ok(midDeps.keyring.byId.has(newId));
      assert.deepEqual(await resolveAll(midDeps, ids), resolvedBefore);
    } finally {
      await midDeps.release();
    }
    // A secret written between the two runs (under the old key) must be re-wrapped too.
    const [lateId] = await storeCredentials(ctx, 1);
    assert.equal((await credentialRows(ctx)).find((r) => r.id === lateId)?.key_id, oldId);
    const lateResolved = await ctx.deps.credentials.resolve(lateId as number);

    // Run 2 targets the same new key and re-wraps only what is left.
    const plan2 = planRotation(ctx.config);
    assert.equal(plan2.keyring.current.id, newId, 'the second run reuses master.key.next');
    const deps2 = await depsWith(ctx, plan2.keyring);
    try {
      const changed = await rotate(plan2, [deps2.credentials, deps2.secretSettings]);
      assert.equal(changed, ids.length - 3 + 1 + (await settingRows(ctx)).length);
    } finally {
      await deps2.release();
    }

    const final = await credentialRows(ctx);
    assert.equal(final.length, ids.length + 1);
    for (const row of final) {
      assert.equal(row.key_id, newId);
      assert.equal(row.secret_ciphertext.split('.')[1], newId);
      const first = original.find((r) => r.id === row.id);
      if (first) {
        assert.deepEqual(sealedBody(row.secret_ciphertext), sealedBody(first.secret_ciphertext), `credential ${row.id}: ciphertext unchanged`);
      }
      const midRow = mid.find((r) => r.id === row.id);
      if (midRow?.key_id === newId) {
        assert.equal(row.secret_ciphertext, midRow.secret_ciphertext, 'rows re-wrapped by the first run are left alone');
      }
    }
    assert.ok((await settingRows(ctx)).every((r) => r.key_id === newId));
    assert.equal(readKey(files.current).id, newId);
    assert.equal(readKey(files.previous).id, oldId);
    assert.equal(existsSync(files.next), false);

    const onlyNew = await depsWith(ctx, createKeyring(readKey(files.current)));
    try {
      assert.deepEqual(await resolveAll(onlyNew, ids), resolvedBefore);
      assert.deepEqual(await onlyNew.credentials.resolve(lateId as number), lateResolved);
      assert.deepEqual(await onlyNew.secretSettings.get(SMTP_SETTING), { password: 'smtp-secret-2' });
    } finally {
      await onlyNew.release();
    }
  });

  test('a crash between the two renames is finished when the keyring is next loaded', async () => {
    const ids = (await credentialRows(ctx)).map((r) => r.id);
    const currentId = readKey(files.current).id;
    const plan = planRotation(ctx.config);
    const nextId = plan.keyring.current.id;
    assert.notEqual(nextId, currentId, 'a finished rotation is followed by a fresh key');
    const deps = await depsWith(ctx, plan.keyring);
    try {
      assert.equal(await deps.credentials.rewrapAll(), ids.length);
      await deps.secretSettings.rewrapAll();
    } finally {
      await deps.release();
    }
    // finish() died after its first rename: master.key is gone, .previous and .next exist.
    renameSync(files.current, files.previous);
    assert.equal(existsSync(files.current), false);

    const keyring = loadKeyring(ctx.config);
    assert.equal(keyring.current.id, nextId);
    assert.equal(readKey(files.current).id, nextId);
    assert.equal(readKey(files.previous).id, currentId);
    assert.equal(existsSync(files.next), false);
    const onlyNew = await depsWith(ctx, createKeyring(readKey(files.current)));
    try {
      for (const id of ids) {
        assert.equal((await onlyNew.credentials.resolve(id)).id, id);
      }
    } finally {
      await onlyNew.release();
    }
  });
});

describe('a secret changed while a rotation runs', () => {
  let ctx: TestContext;
  before(async () => {
    ctx = await createTestContext();
  });
  after(() => ctx.close());

  test('a credential updated between the rotation reading and re-wrapping it keeps the new value', async () => {
    const [id] = await storeCredentials(ctx, 1);
    const credentialId = id as number;
    const oldId = ctx.deps.keyring.current.id;
    const plan = planRotation(ctx.config);
    const newPassword = `changed-${unique()}`;
    let fired = false;
    // Right after the rotation has read its batch, an admin changes the password through the API
    // (whose process still seals under the old key).
    const interleave: KyselyPlugin = {
      transformQuery: (args) => args.node,
      async transformResult(args) {
        if (!fired && args.result.rows.some((r) => (r as { id?: unknown }).id === credentialId && 'secret_ciphertext' in (r as object))) {
          fired = true;
          const res = await ctx.request({ method: 'PUT', url: `/credentials/${credentialId}`, token: ctx.adminToken, payload: { password: newPassword } });
          assert.equal(res.statusCode, 200, res.body);
        }
        return args.result;
      },
    };
    const db = ctx.deps.db.withPlugin(interleave);
    const rotating = createCredentialsService({
      db,
      repo: createCredentialsRepo(db),
      keyring: plan.keyring,
      audit: ctx.deps.audit,
      clock: systemClock,
      references: createCredentialReferences(db),
    });
    await rotating.rewrapAll();
    assert.ok(fired, 'the concurrent update happened mid-rotation');
    const row = (await credentialRows(ctx)).find((r) => r.id === credentialId) as StoredRow;
    assert.notEqual(oldId, plan.keyring.current.id);
    assert.equal(row.key_id, plan.keyring.current.id, 'the updated row was re-wrapped too');
    const onlyNew = createCredentialsService({
      db: ctx.deps.db,
      repo: createCredentialsRepo(ctx.deps.db),
      keyring: createKeyring(plan.keyring.current),
      audit: ctx.deps.audit,
      clock: systemClock,
      references: createCredentialReferences(ctx.deps.db),
    });
    assert.equal((await onlyNew.resolve(credentialId)).password, newPassword, 'the update is not lost');
  });

  test('a secret setting changed between the rotation reading and re-wrapping it keeps the new value', async () => {
    await ctx.deps.secretSettings.set('smtp_password', { password: 'old-smtp-password' });
    const plan = planRotation(ctx.config);
    let fired = false;
    const interleave: KyselyPlugin = {
      transformQuery: (args) => args.node,
      async transformResult(args) {
        if (!fired && args.result.rows.some((r) => (r as { key?: unknown }).key === 'smtp_password')) {
          fired = true;
          await ctx.deps.secretSettings.set('smtp_password', { password: 'new-smtp-password' });
        }
        return args.result;
      },
    };
    await createSecretSettings(ctx.deps.db.withPlugin(interleave), plan.keyring).rewrapAll();
    assert.ok(fired);
    assert.deepEqual(await createSecretSettings(ctx.deps.db, plan.keyring).get('smtp_password'), { password: 'new-smtp-password' });
  });
});

describe('master key rotation with keys from the environment', () => {
  const oldKey = generateMasterKey();
  const newKey = generateMasterKey();
  let ctx: TestContext;
  before(async () => {
    ctx = await createTestContext({ env: { OPSCONDUCTOR_MASTER_KEY: oldKey } });
  });
  after(() => ctx.close());

  test('OPSCONDUCTOR_NEW_MASTER_KEY is the target; no key file is written', async () => {
    assert.equal(ctx.deps.keyring.current.id, parseMasterKey(oldKey).id);
    const ids = await storeCredentials(ctx, 4);
    const before = await credentialRows(ctx);
    const resolvedBefore = await resolveAll(ctx.deps, ids);

    const config = loadConfig({ OPSCONDUCTOR_DATA_DIR: ctx.dataDir, OPSCONDUCTOR_MASTER_KEY: oldKey, OPSCONDUCTOR_NEW_MASTER_KEY: newKey });
    const plan = planRotation(config);
    const newId = parseMasterKey(newKey).id;
    assert.equal(plan.keyring.current.id, newId);
    assert.ok(plan.keyring.byId.has(parseMasterKey(oldKey).id));
    assert.match(plan.instructions, /OPSCONDUCTOR_MASTER_KEY/);
    assert.equal(plan.instructions.includes(newKey), false, 'the instructions do not print the key');

    const deps2 = await depsWith(ctx, plan.keyring, config);
    try {
      assert.ok((await rotate(plan, [deps2.credentials, deps2.secretSettings])) >= ids.length);
    } finally {
      await deps2.release();
    }
    for (const file of Object.values(keyFiles(ctx.dataDir))) {
      assert.equal(existsSync(file), false, `${file} must not exist when keys come from the environment`);
    }
    const after = await credentialRows(ctx);
    for (const [i, row] of after.entries()) {
      assert.equal(row.key_id, newId);
      assert.deepEqual(sealedBody(row.secret_ciphertext), sealedBody((before[i] as StoredRow).secret_ciphertext));
    }
    assert.ok((await settingRows(ctx)).every((r) => r.key_id === newId));

    // The operator then sets the new key (old one as previous while processes restart), and finally drops the old one.
    const transitional = loadKeyring(loadConfig({ OPSCONDUCTOR_DATA_DIR: ctx.dataDir, OPSCONDUCTOR_MASTER_KEY: newKey, OPSCONDUCTOR_MASTER_KEY_PREVIOUS: oldKey }));
    assert.equal(transitional.current.id, newId);
    assert.equal(transitional.byId.size, 2);
    const finalConfig = loadConfig({ OPSCONDUCTOR_DATA_DIR: ctx.dataDir, OPSCONDUCTOR_MASTER_KEY: newKey });
    const deps3 = await depsWith(ctx, undefined, finalConfig);
    try {
      assert.equal(deps3.keyring.byId.size, 1);
      assert.deepEqual(await resolveAll(deps3, ids), resolvedBefore);
    } finally {
      await deps3.release();
    }
  });

  test('without OPSCONDUCTOR_NEW_MASTER_KEY (or with a bad one) planning refuses with MasterKeyError', () => {
    const dataDir = ctx.dataDir;
    const refuses = (env: Record<string, string>, pattern: RegExp) =>
      assert.throws(() => planRotation(loadConfig({ OPSCONDUCTOR_DATA_DIR: dataDir, ...env })), (e: unknown) => e instanceof MasterKeyError && pattern.test(e.message));
    refuses({ OPSCONDUCTOR_MASTER_KEY: oldKey }, /OPSCONDUCTOR_NEW_MASTER_KEY/);
    refuses({ OPSCONDUCTOR_MASTER_KEY: oldKey, OPSCONDUCTOR_DATABASE_URL: 'postgres://127.0.0.1:1/none' }, /OPSCONDUCTOR_NEW_MASTER_KEY/);
    refuses({ OPSCONDUCTOR_DATABASE_URL: 'postgres://127.0.0.1:1/none', OPSCONDUCTOR_NEW_MASTER_KEY: newKey }, /OPSCONDUCTOR_MASTER_KEY/);
    refuses({ OPSCONDUCTOR_MASTER_KEY: oldKey, OPSCONDUCTOR_NEW_MASTER_KEY: 'too-short' }, /OPSCONDUCTOR_NEW_MASTER_KEY/);
    refuses({ OPSCONDUCTOR_MASTER_KEY: 'not-a-key', OPSCONDUCTOR_NEW_MASTER_KEY: newKey }, /OPSCONDUCTOR_MASTER_KEY/);
    for (const file of Object.values(keyFiles(dataDir))) {
      assert.equal(existsSync(file), false, 'a refused plan writes no key file');
    }
  });
});
