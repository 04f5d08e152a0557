import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { describe, test } from 'node:test';

import { createKeyring, SealError } from '../shared/crypto-box.ts';
import { loadKeyring } from './keyring.ts';
import { credentialRows, depsWith, readKey, resolveAll, rotationApp, sealedBody, settingRows, SMTP_SETTING, type StoredRow, storeSecrets } from './rotation.fixtures.ts';
import { planRotation, rotate } from './rotation.ts';

describe('master key rotation with embedded key files', () => {
  const app = rotationApp();

  test('re-wraps every data key under a new master key without touching the ciphertexts', async () => {
    const { ctx, files } = app;
    const ids = await storeSecrets(ctx, 6, 'smtp-secret-value');
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
