import assert from 'node:assert/strict';
import { existsSync, renameSync } from 'node:fs';
import { describe, test } from 'node:test';

import { createCredentialsRepo } from '../modules/credentials/index.ts';
import { createKeyring } from '../shared/crypto-box.ts';
import { loadKeyring } from './keyring.ts';
import { credentialRows, credentialsServiceWith, depsWith, readKey, resolveAll, rotationApp, sealedBody, settingRows, SMTP_SETTING, storeCredentials, storeSecrets } from './rotation.fixtures.ts';
import { planRotation, rotate } from './rotation.ts';

describe('an interrupted master key rotation is finished by running it again', () => {
  const app = rotationApp();

  test('a crash after some rows leaves a readable mix; the next run re-wraps the rest and promotes the key', async () => {
    const { ctx, files } = app;
    const ids = await storeSecrets(ctx, 8, 'smtp-secret-2');
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
    const crashing = credentialsServiceWith(ctx, ctx.deps.db, plan1.keyring, crashingRepo);
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
    const { ctx, files } = app;
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
