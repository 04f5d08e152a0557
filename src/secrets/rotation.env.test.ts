import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';

import { loadConfig } from '../config.ts';
import { generateMasterKey, parseMasterKey } from '../shared/crypto-box.ts';
import { keyFiles, loadKeyring, MasterKeyError } from './keyring.ts';
import { credentialRows, depsWith, resolveAll, rotationApp, sealedBody, settingRows, type StoredRow, storeCredentials } from './rotation.fixtures.ts';
import { planRotation, rotate } from './rotation.ts';

describe('master key rotation with keys from the environment', () => {
  const oldKey = generateMasterKey();
  const newKey = generateMasterKey();
  const app = rotationApp({ OPSCONDUCTOR_MASTER_KEY: oldKey });

  test('OPSCONDUCTOR_NEW_MASTER_KEY is the target; no key file is written', async () => {
    const { ctx } = app;
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
    const { ctx } = app;
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
