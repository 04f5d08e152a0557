/** SSH key fingerprints in OpenSSH's `SHA256:<base64, unpadded>` form. */
import { createHash } from 'node:crypto';

/** Fingerprint of a public key blob (wire format), as `ssh-keygen -l` prints it. */
export function sshFingerprint(publicKeyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '')}`;
}
