/**
 * Master key rotation: re-wraps every stored data key under a new master key. Records' encrypted
 * contents are not touched, each record is updated on its own, and records already under the new
 * key are skipped — so an interrupted rotation is finished by running it again.
 */
import { renameSync } from 'node:fs';

import type { Config } from '../config.ts';
import { createKeyring, type Keyring } from '../shared/crypto-box.ts';
import { ensureKeyFile, keyFiles, loadKeyring, MasterKeyError, parseNamed } from './keyring.ts';

/** Everything that stores sealed secrets and can re-wrap them. */
export interface SealedStores {
  rewrapAll(): Promise<number>;
}

/** The plan for one rotation: the keyring to re-wrap under, and what to do once done. */
export interface RotationPlan {
  keyring: Keyring;
  /** Embedded mode: promote master.key.next to master.key. */
  finish(): void;
  /** What the operator must do next. */
  instructions: string;
}

/** Works out the rotation for `config` (embedded key files, or OPSCONDUCTOR_NEW_MASTER_KEY). */
export function planRotation(config: Config): RotationPlan {
  const old = loadKeyring(config);
  const others = [...old.byId.values()];
  if (config.secrets.newMasterKey) {
    const next = parseNamed('OPSCONDUCTOR_NEW_MASTER_KEY', config.secrets.newMasterKey);
    return {
      keyring: createKeyring(next, others),
      finish: () => {},
      instructions:
        `Every secret is now wrapped by the new key (${next.id}). Set OPSCONDUCTOR_MASTER_KEY to the new key on every process, ` +
        'keep the old one in OPSCONDUCTOR_MASTER_KEY_PREVIOUS until all processes have restarted, then run this command once more ' +
        '(with OPSCONDUCTOR_NEW_MASTER_KEY still set to the new key) to re-wrap anything written in between.',
    };
  }
  if (config.db.url || config.secrets.masterKey) {
    throw new MasterKeyError('Set OPSCONDUCTOR_NEW_MASTER_KEY to the new key (`openssl rand -base64 32`) to rotate a key given by environment.');
  }
  const files = keyFiles(config.dataDir);
  const next = ensureKeyFile(files.next, config.dataDir);
  return {
    keyring: createKeyring(next, others),
    finish: () => {
      renameSync(files.current, files.previous);
      renameSync(files.next, files.current);
    },
    instructions: `Every secret is now wrapped by the new key (${next.id}) in ${files.current}; the old key is kept in ${files.previous}.`,
  };
}

/** Re-wraps every store under `plan.keyring`; returns how many records changed. */
export async function rotate(plan: RotationPlan, stores: SealedStores[]): Promise<number> {
  let changed = 0;
  for (const store of stores) {
    changed += await store.rewrapAll();
  }
  plan.finish();
  return changed;
}
