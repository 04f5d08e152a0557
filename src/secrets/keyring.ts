/**
 * Loads the master keyring. `OPSCONDUCTOR_MASTER_KEY` (plus `OPSCONDUCTOR_MASTER_KEY_PREVIOUS`
 * during a rotation) when given; otherwise, in embedded mode only, `DATA_DIR/master.key`
 * (generated on first start, mode 0600) with `master.key.next`/`master.key.previous` left by
 * `opsconductor admin rotate-master-key`. With a database URL and no key, start refuses.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Config } from '../config.ts';
import { createKeyring, generateMasterKey, type Keyring, type MasterKey, parseMasterKey } from '../shared/crypto-box.ts';

/** Raised when the master key is missing or malformed; the message says how to fix it. */
export class MasterKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MasterKeyError';
  }
}

/** Paths of the embedded key files in `dataDir`. */
export function keyFiles(dataDir: string) {
  return {
    current: join(dataDir, 'master.key'),
    next: join(dataDir, 'master.key.next'),
    previous: join(dataDir, 'master.key.previous'),
  };
}

/** Parses a key, naming its source in the error. */
export function parseNamed(name: string, value: string): MasterKey {
  try {
    return parseMasterKey(value);
  } catch (e) {
    throw new MasterKeyError(`${name}: ${(e as Error).message}`);
  }
}

function readKeyFile(path: string): MasterKey | undefined {
  return existsSync(path) ? parseNamed(path, readFileSync(path, 'utf8')) : undefined;
}

/** Writes a new key file (mode 0600) unless it exists; returns the key in it. */
export function ensureKeyFile(path: string, dataDir: string): MasterKey {
  const existing = readKeyFile(path);
  if (existing) {
    return existing;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  writeFileSync(path, `${generateMasterKey()}\n`, { mode: 0o600, flag: 'wx' });
  return readKeyFile(path) as MasterKey;
}

/** Loads the keyring described by `config` (creating the embedded key file when needed). */
export function loadKeyring(config: Config): Keyring {
  const previous = config.secrets.previousMasterKeys.map((k, i) => parseNamed(`OPSCONDUCTOR_MASTER_KEY_PREVIOUS[${i}]`, k));
  if (config.secrets.masterKey) {
    return createKeyring(parseNamed('OPSCONDUCTOR_MASTER_KEY', config.secrets.masterKey), previous);
  }
  if (config.db.url) {
    throw new MasterKeyError(
      'OPSCONDUCTOR_DATABASE_URL is set but OPSCONDUCTOR_MASTER_KEY is not. Generate one with ' +
        '`openssl rand -base64 32` (or `node -e "console.log(crypto.randomBytes(32).toString(\'base64\'))"`), ' +
        'keep it safe, and give the same key to every OpsConductor process.',
    );
  }
  const files = keyFiles(config.dataDir);
  if (!existsSync(files.current) && existsSync(files.next) && existsSync(files.previous)) {
    // A rotation was interrupted between its two renames: finish promoting the new key.
    renameSync(files.next, files.current);
  }
  const current = ensureKeyFile(files.current, config.dataDir);
  const extra = [readKeyFile(files.previous), readKeyFile(files.next)].filter((k): k is MasterKey => k !== undefined);
  return createKeyring(current, [...previous, ...extra]);
}
