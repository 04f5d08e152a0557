/**
 * RC4, the stream cipher of NTLM key exchange and message sealing. Node 20's OpenSSL 3 only
 * offers it through the legacy provider, off by default, so it is implemented here. A handle
 * keeps its keystream position across calls, as NTLM sealing requires.
 */

/** An RC4 keystream: `update` XORs the next bytes of the stream into a copy of `data`. */
export interface Rc4 {
  update(data: Buffer): Buffer;
}

/** A fresh RC4 stream keyed with `key` (1–256 bytes). */
export function createRc4(key: Buffer): Rc4 {
  const s = Uint8Array.from({ length: 256 }, (_, i) => i);
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + (s[i] as number) + (key[i % key.length] as number)) & 0xff;
    [s[i], s[j]] = [s[j] as number, s[i] as number];
  }
  let i = 0;
  let j = 0;
  return {
    update(data: Buffer): Buffer {
      const out = Buffer.alloc(data.length);
      for (let n = 0; n < data.length; n++) {
        i = (i + 1) & 0xff;
        j = (j + (s[i] as number)) & 0xff;
        [s[i], s[j]] = [s[j] as number, s[i] as number];
        out[n] = (data[n] as number) ^ (s[((s[i] as number) + (s[j] as number)) & 0xff] as number);
      }
      return out;
    },
  };
}
