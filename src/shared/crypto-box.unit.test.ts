import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';

import { createKeyring, envelopeKeyId, generateMasterKey, open, parseMasterKey, rewrap, SealError, seal } from './crypto-box.ts';

const VALUE = { password: 'hunter2-but-longer', private_key: '-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n', n: 42 };
const CONTEXT = 'credential';

const newKey = () => parseMasterKey(generateMasterKey());

/** The six '.'-separated parts of an envelope. */
const partsOf = (envelope: string) => envelope.split('.');

/** `envelope` with byte `index` of base64url part `part` (2..5) XOR-ed with 0x01. */
function flipByte(envelope: string, part: number, index: number): string {
  const parts = partsOf(envelope);
  const raw = Buffer.from(parts[part] as string, 'base64url');
  raw[index] = (raw[index] as number) ^ 0x01;
  parts[part] = raw.toString('base64url');
  return parts.join('.');
}

describe('crypto-box', () => {
  test('seal then open returns the value; the envelope has six parts and names the key', () => {
    const master = newKey();
    const keyring = createKeyring(master);
    const { envelope, keyId } = seal(keyring, VALUE, CONTEXT);
    assert.equal(keyId, master.id);
    const parts = partsOf(envelope);
    assert.equal(parts.length, 6);
    assert.equal(parts[0], 'v1');
    assert.equal(parts[1], master.id);
    assert.equal(envelopeKeyId(envelope), master.id);
    assert.deepEqual(open(keyring, envelope, CONTEXT), VALUE);
    // The plaintext does not appear in the envelope, in any encoding we store.
    assert.equal(envelope.includes('hunter2'), false);
    assert.equal(envelope.includes(Buffer.from(JSON.stringify(VALUE)).toString('base64url').slice(0, 20)), false);
  });

  test('round-trips strings, arrays, unicode and an empty object', () => {
    const keyring = createKeyring(newKey());
    for (const value of ['just a string', ['a', 1, null], { ü: 'naïve ☃', nested: { deep: [true] } }, {}]) {
      assert.deepEqual(open(keyring, seal(keyring, value, CONTEXT).envelope, CONTEXT), value);
    }
  });

  test('two seals of the same value differ in every random part', () => {
    const keyring = createKeyring(newKey());
    const a = partsOf(seal(keyring, VALUE, CONTEXT).envelope);
    const b = partsOf(seal(keyring, VALUE, CONTEXT).envelope);
    assert.equal(a[1], b[1], 'same key id');
    for (const i of [2, 3, 4, 5]) {
      assert.notEqual(a[i], b[i], `part ${i} differs`);
    }
  });

  test('a flipped byte anywhere in the wrapped key, iv, tag or ciphertext is a SealError', () => {
    const keyring = createKeyring(newKey());
    const { envelope } = seal(keyring, VALUE, CONTEXT);
    let tried = 0;
    for (const part of [2, 3, 4, 5]) {
      const length = Buffer.from(partsOf(envelope)[part] as string, 'base64url').length;
      assert.ok(length > 0);
      for (let index = 0; index < length; index++) {
        const tampered = flipByte(envelope, part, index);
        assert.notEqual(tampered, envelope);
        assert.throws(() => open(keyring, tampered, CONTEXT), SealError, `part ${part} byte ${index}`);
        tried++;
      }
    }
    // wrapped key (12 + 16 + 32) + iv 12 + tag 16 + at least the JSON's length
    assert.ok(tried >= 60 + 12 + 16 + JSON.stringify(VALUE).length, `tried ${tried} flips`);
    // The untouched envelope still opens (the loop did not mutate it).
    assert.deepEqual(open(keyring, envelope, CONTEXT), VALUE);
  });

  test('a changed version or key id, a truncated part or a wrong number of parts is a SealError', () => {
    const master = newKey();
    const keyring = createKeyring(master);
    const { envelope } = seal(keyring, VALUE, CONTEXT);
    const parts = partsOf(envelope);
    const otherId = `${master.id.slice(0, -1)}${master.id.endsWith('0') ? '1' : '0'}`;
    const variants = [
      ['v2', ...parts.slice(1)].join('.'),
      ['v1', otherId, ...parts.slice(2)].join('.'),
      [...parts.slice(0, 5), (parts[5] as string).slice(0, -2)].join('.'),
      [...parts.slice(0, 4), (parts[4] as string).slice(0, 8), parts[5]].join('.'),
      [...parts.slice(0, 2), (parts[2] as string).slice(0, 20), ...parts.slice(3)].join('.'),
      parts.slice(0, 5).join('.'),
      [...parts, 'extra'].join('.'),
      '',
      'not an envelope',
    ];
    for (const variant of variants) {
      assert.throws(() => open(keyring, variant, CONTEXT), SealError, variant.slice(0, 40));
    }
  });

  test('the wrong context is a SealError', () => {
    const keyring = createKeyring(newKey());
    const { envelope } = seal(keyring, VALUE, 'setting:smtp');
    assert.throws(() => open(keyring, envelope, 'setting:jwt_secret'), SealError);
    assert.throws(() => open(keyring, envelope, 'credential'), SealError);
    assert.deepEqual(open(keyring, envelope, 'setting:smtp'), VALUE);
  });

  test('another master key cannot open an envelope, even when given the same id', () => {
    const master = newKey();
    const { envelope } = seal(createKeyring(master), VALUE, CONTEXT);
    const impostor = { id: master.id, key: randomBytes(32) };
    assert.throws(() => open(createKeyring(impostor), envelope, CONTEXT), SealError);
  });

  test('opening with a keyring that lacks the key id says that key is not configured', () => {
    const master = newKey();
    const { envelope } = seal(createKeyring(master), VALUE, CONTEXT);
    const other = createKeyring(newKey());
    assert.throws(
      () => open(other, envelope, CONTEXT),
      (e: unknown) => e instanceof SealError && e.message.includes(master.id) && /not configured/.test(e.message),
    );
    assert.throws(
      () => rewrap(other, envelope),
      (e: unknown) => e instanceof SealError && e.message.includes(master.id) && /not configured/.test(e.message),
    );
  });

  test('a keyring opens envelopes of its older keys and seals under the current one', () => {
    const old = newKey();
    const current = newKey();
    const oldEnvelope = seal(createKeyring(old), VALUE, CONTEXT).envelope;
    const keyring = createKeyring(current, [old]);
    assert.equal(keyring.byId.size, 2);
    assert.deepEqual(open(keyring, oldEnvelope, CONTEXT), VALUE);
    assert.equal(seal(keyring, VALUE, CONTEXT).keyId, current.id);
  });

  test('rewrap changes only the key id and the wrapped key; the result opens with the new key alone', () => {
    const old = newKey();
    const next = newKey();
    const { envelope } = seal(createKeyring(old), VALUE, CONTEXT);
    const rewrapped = rewrap(createKeyring(next, [old]), envelope);
    assert.equal(rewrapped.keyId, next.id);
    const before = partsOf(envelope);
    const after = partsOf(rewrapped.envelope);
    assert.equal(after.length, 6);
    assert.equal(after[0], 'v1');
    assert.equal(after[1], next.id);
    assert.notEqual(after[2], before[2], 'the data key is wrapped anew');
    assert.deepEqual(after.slice(3), before.slice(3), 'iv, tag and ciphertext are untouched');
    assert.deepEqual(open(createKeyring(next), rewrapped.envelope, CONTEXT), VALUE);
    assert.throws(() => open(createKeyring(old), rewrapped.envelope, CONTEXT), SealError);
  });

  test('rewrap of an envelope already under the current key returns it unchanged', () => {
    const keyring = createKeyring(newKey());
    const { envelope, keyId } = seal(keyring, VALUE, CONTEXT);
    assert.deepEqual(rewrap(keyring, envelope), { envelope, keyId });
  });

  test('rewrap refuses a tampered wrapped key', () => {
    const old = newKey();
    const { envelope } = seal(createKeyring(old), VALUE, CONTEXT);
    assert.throws(() => rewrap(createKeyring(newKey(), [old]), flipByte(envelope, 2, 30)), SealError);
  });

  test('parseMasterKey accepts 32 base64 bytes (surrounding whitespace trimmed) and derives the id', () => {
    const raw = randomBytes(32);
    const key = parseMasterKey(`  ${raw.toString('base64')}\n`);
    assert.deepEqual(key.key, raw);
    assert.equal(key.id, createHash('sha256').update(raw).digest('hex').slice(0, 16));
    assert.match(key.id, /^[0-9a-f]{16}$/);
    assert.equal(parseMasterKey(generateMasterKey()).key.length, 32);
    assert.notEqual(generateMasterKey(), generateMasterKey());
  });

  test('parseMasterKey rejects keys that are not 32 bytes or not base64', () => {
    const valid = randomBytes(32).toString('base64');
    const bad = [
      '',
      '   ',
      randomBytes(31).toString('base64'),
      randomBytes(33).toString('base64'),
      randomBytes(16).toString('base64'),
      randomBytes(64).toString('base64'),
      randomBytes(32).toString('hex'),
      `${valid.slice(0, 10)}*${valid.slice(11)}`,
      `${valid.slice(0, 20)}!!${valid.slice(20)}`,
      `${valid.slice(0, 20)} ${valid.slice(20)}`,
      'this is not base64 at all, but it is long....',
    ];
    for (const input of bad) {
      assert.throws(() => parseMasterKey(input), SealError, JSON.stringify(input));
    }
  });
});
