/**
 * SSH private keys in a format ssh2 reads. ssh2 reads OpenSSH keys and the traditional OpenSSL
 * PEM forms, but not PKCS#8 (`BEGIN PRIVATE KEY`, `BEGIN ENCRYPTED PRIVATE KEY`), which is what
 * `openssl genpkey`, cloud consoles and many vaults hand out. Those are rewritten in memory — RSA
 * as PKCS#1, EC as SEC1, Ed25519 in OpenSSH's own format — decrypted with the passphrase if they
 * were encrypted. The stored credential keeps the text as given.
 */
import { createPrivateKey, type KeyObject, randomBytes } from 'node:crypto';

const PKCS8 = /-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/;

/** True when `text` is a PKCS#8 private key. */
export function isPkcs8(text: string): boolean {
  return PKCS8.test(text);
}

/**
 * `text` as ssh2 can parse it: PKCS#8 keys rewritten (throws OpenSSL's error if the passphrase is
 * missing or wrong, or the key type has no SSH form); anything else returned unchanged.
 */
export function ssh2KeyText(text: string, passphrase?: string): string {
  if (!isPkcs8(text)) {
    return text;
  }
  const key = createPrivateKey({ key: text, format: 'pem', passphrase });
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return key.export({ type: 'pkcs1', format: 'pem' }) as string;
    case 'ec':
      return key.export({ type: 'sec1', format: 'pem' }) as string;
    case 'ed25519':
      return openSshEd25519(key);
    default:
      throw new Error(`a ${key.asymmetricKeyType ?? 'unknown'} key cannot be used for SSH`);
  }
}

/** An SSH wire-format string: length, then bytes. */
function sshString(value: Buffer | string): Buffer {
  const bytes = Buffer.from(value);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}

/** An unencrypted `openssh-key-v1` private key (PROTOCOL.key in OpenSSH's sources). */
function openSshEd25519(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d ?? '', 'base64url');
  const pub = Buffer.from(jwk.x ?? '', 'base64url');
  const type = 'ssh-ed25519';
  const check = randomBytes(4);
  const secret = Buffer.concat([check, check, sshString(type), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString('')]);
  const padding = Buffer.from(Array.from({ length: (8 - (secret.length % 8)) % 8 }, (_, i) => i + 1));
  const count = Buffer.alloc(4);
  count.writeUInt32BE(1);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    sshString('none'),
    sshString('none'),
    sshString(''),
    count,
    sshString(Buffer.concat([sshString(type), sshString(pub)])),
    sshString(Buffer.concat([secret, padding])),
  ]);
  const lines = body.toString('base64').match(/.{1,70}/g) ?? [];
  return ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n');
}
