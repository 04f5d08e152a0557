/**
 * MD4 (RFC 1320), which NTLM's NT hash is built on. Node 20's OpenSSL 3 only offers it through
 * the legacy provider, which is off by default, so it is implemented here. Never use it for
 * anything but NTLM.
 */

const rotl = (x: number, n: number) => (x << n) | (x >>> (32 - n));

/** The message padded to a multiple of 64 bytes, with its bit length at the end (little-endian). */
function pad(message: Buffer): Buffer {
  const length = message.length;
  const padded = Buffer.alloc(((length + 8) >> 6) * 64 + 64);
  message.copy(padded);
  padded[length] = 0x80;
  padded.writeUInt32LE((length * 8) >>> 0, padded.length - 8);
  padded.writeUInt32LE(Math.floor(length / 0x20000000), padded.length - 4);
  return padded;
}

/** MD4 digest of `message` (16 bytes). */
export function md4(message: Buffer): Buffer {
  const data = pad(message);
  let [a, b, c, d] = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
  const x = new Array<number>(16);
  const f = (p: number, q: number, r: number) => (p & q) | (~p & r);
  const g = (p: number, q: number, r: number) => (p & q) | (p & r) | (q & r);
  const h = (p: number, q: number, r: number) => p ^ q ^ r;
  for (let block = 0; block < data.length; block += 64) {
    for (let i = 0; i < 16; i++) {
      x[i] = data.readUInt32LE(block + i * 4);
    }
    const [aa, bb, cc, dd] = [a, b, c, d];
    // Round 1: [abcd k s] a = (a + F(b,c,d) + X[k]) <<< s
    for (const k of [0, 4, 8, 12]) {
      a = rotl((a + f(b, c, d) + (x[k] as number)) | 0, 3);
      d = rotl((d + f(a, b, c) + (x[k + 1] as number)) | 0, 7);
      c = rotl((c + f(d, a, b) + (x[k + 2] as number)) | 0, 11);
      b = rotl((b + f(c, d, a) + (x[k + 3] as number)) | 0, 19);
    }
    // Round 2: a = (a + G(b,c,d) + X[k] + 5A827999) <<< s
    for (const k of [0, 1, 2, 3]) {
      a = rotl((a + g(b, c, d) + (x[k] as number) + 0x5a827999) | 0, 3);
      d = rotl((d + g(a, b, c) + (x[k + 4] as number) + 0x5a827999) | 0, 5);
      c = rotl((c + g(d, a, b) + (x[k + 8] as number) + 0x5a827999) | 0, 9);
      b = rotl((b + g(c, d, a) + (x[k + 12] as number) + 0x5a827999) | 0, 13);
    }
    // Round 3: a = (a + H(b,c,d) + X[k] + 6ED9EBA1) <<< s
    for (const k of [0, 2, 1, 3]) {
      a = rotl((a + h(b, c, d) + (x[k] as number) + 0x6ed9eba1) | 0, 3);
      d = rotl((d + h(a, b, c) + (x[k + 8] as number) + 0x6ed9eba1) | 0, 9);
      c = rotl((c + h(d, a, b) + (x[k + 4] as number) + 0x6ed9eba1) | 0, 11);
      b = rotl((b + h(c, d, a) + (x[k + 12] as number) + 0x6ed9eba1) | 0, 15);
    }
    [a, b, c, d] = [(a + aa) | 0, (b + bb) | 0, (c + cc) | 0, (d + dd) | 0];
  }
  const digest = Buffer.alloc(16);
  [a, b, c, d].forEach((word, i) => digest.writeInt32LE(word, i * 4));
  return digest;
}
