/**
 * Envelope encryption for secrets at rest. Each sealed record gets a fresh 256-bit data key; the
 * record's JSON is encrypted with AES-256-GCM under that key (bound to a context string), and the
 * data key is itself encrypted (wrapped) under the master key named by `keyId`. Rotating the master
 * key re-wraps data keys without ever decrypting the records' contents.
 *
 * Envelope format: `v1.<keyId>.<wrapped data key>.<iv>.<tag>.<ciphertext>` (base64url parts;
 * the wrapped key is iv‖tag‖ciphertext).
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

/** A master key and its id (first 16 hex characters of its SHA-256). */
export interface MasterKey {
  id: string;
  key: Buffer;
}

/** The current master key plus older ones still needed to open not-yet-rewrapped records. */
export interface Keyring {
  current: MasterKey;
  byId: ReadonlyMap<string, MasterKey>;
}

/** Raised when an envelope cannot be opened (unknown key, tampering, wrong context). */
export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SealError';
  }
}

const b64 = (buf: Buffer) => buf.toString('base64url');
const unb64 = (text: string) => Buffer.from(text, 'base64url');

/** Parses a base64 master key; throws unless it decodes to exactly 32 bytes. */
export function parseMasterKey(base64: string): MasterKey {
  const trimmed = base64.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(trimmed)) {
    throw new SealError('a master key must be 32 random bytes, base64-encoded (e.g. `openssl rand -base64 32`)');
  }
  return { id: createHash('sha256').update(key).digest('hex').slice(0, 16), key };
}

/** A new random master key, base64-encoded. */
export function generateMasterKey(): string {
  return randomBytes(32).toString('base64');
}

/** Builds a keyring: `current` seals, every key (current included) can open. */
export function createKeyring(current: MasterKey, others: MasterKey[] = []): Keyring {
  const byId = new Map<string, MasterKey>();
  for (const key of [...others, current]) {
    byId.set(key.id, key);
  }
  return { current, byId };
}

function encrypt(key: Buffer, plaintext: Buffer, aad?: string): { iv: Buffer; tag: Buffer; ciphertext: Buffer } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  if (aad) {
    cipher.setAAD(Buffer.from(aad, 'utf8'));
  }
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

function decrypt(key: Buffer, iv: Buffer, tag: Buffer, ciphertext: Buffer, aad?: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, iv);
  if (aad) {
    decipher.setAAD(Buffer.from(aad, 'utf8'));
  }
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

function wrapKey(master: MasterKey, dataKey: Buffer): string {
  const { iv, tag, ciphertext } = encrypt(master.key, dataKey, `opsconductor:data-key:${master.id}`);
  return b64(Buffer.concat([iv, tag, ciphertext]));
}

function unwrapKey(master: MasterKey, wrapped: string): Buffer {
  const raw = unb64(wrapped);
  return decrypt(master.key, raw.subarray(0, 12), raw.subarray(12, 28), raw.subarray(28), `opsconductor:data-key:${master.id}`);
}

interface Envelope {
  keyId: string;
  wrapped: string;
  iv: string;
  tag: string;
  ciphertext: string;
}

function parseEnvelope(envelope: string): Envelope {
  const parts = envelope.split('.');
  if (parts.length !== 6 || parts[0] !== 'v1') {
    throw new SealError('not a sealed envelope');
  }
  const [, keyId, wrapped, iv, tag, ciphertext] = parts as [string, string, string, string, string, string];
  return { keyId, wrapped, iv, tag, ciphertext };
}

function masterFor(keyring: Keyring, keyId: string): MasterKey {
  const master = keyring.byId.get(keyId);
  if (!master) {
    throw new SealError(`the master key ${keyId} that sealed this secret is not configured`);
  }
  return master;
}

/** Seals `value` (JSON) under a fresh data key; `context` must be given again to open it. */
export function seal(keyring: Keyring, value: unknown, context: string): { envelope: string; keyId: string } {
  const dataKey = randomBytes(32);
  const { iv, tag, ciphertext } = encrypt(dataKey, Buffer.from(JSON.stringify(value), 'utf8'), context);
  const keyId = keyring.current.id;
  return { envelope: ['v1', keyId, wrapKey(keyring.current, dataKey), b64(iv), b64(tag), b64(ciphertext)].join('.'), keyId };
}

/** Opens an envelope sealed with {@link seal} under the same `context`. */
export function open<T = unknown>(keyring: Keyring, envelope: string, context: string): T {
  const parts = parseEnvelope(envelope);
  try {
    const dataKey = unwrapKey(masterFor(keyring, parts.keyId), parts.wrapped);
    const plaintext = decrypt(dataKey, unb64(parts.iv), unb64(parts.tag), unb64(parts.ciphertext), context);
    return JSON.parse(plaintext.toString('utf8')) as T;
  } catch (e) {
    throw e instanceof SealError ? e : new SealError('the secret could not be decrypted (wrong key or tampered data)');
  }
}

/** Re-wraps the data key of `envelope` under the keyring's current key; the ciphertext is untouched. */
export function rewrap(keyring: Keyring, envelope: string): { envelope: string; keyId: string } {
  const parts = parseEnvelope(envelope);
  if (parts.keyId === keyring.current.id) {
    return { envelope, keyId: parts.keyId };
  }
  let dataKey: Buffer;
  try {
    dataKey = unwrapKey(masterFor(keyring, parts.keyId), parts.wrapped);
  } catch (e) {
    throw e instanceof SealError ? e : new SealError('the data key could not be unwrapped');
  }
  const keyId = keyring.current.id;
  return { envelope: ['v1', keyId, wrapKey(keyring.current, dataKey), parts.iv, parts.tag, parts.ciphertext].join('.'), keyId };
}

/** The key id an envelope was sealed under. */
export function envelopeKeyId(envelope: string): string {
  return parseEnvelope(envelope).keyId;
}
