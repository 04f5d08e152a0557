/**
 * What each credential type holds and how it is checked at creation: an SSH key must parse (and
 * decrypt with its passphrase), a certificate must match its private key. Errors name the field.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';

import ssh2 from 'ssh2';

import { ValidationError } from '../../errors.ts';
import { ssh2KeyText } from '../../shared/ssh-key-format.ts';
import { sshFingerprint } from '../../shared/ssh-fingerprint.ts';

/** Credential types. */
export const CREDENTIAL_TYPES = ['ssh', 'winrm', 'password', 'api_token', 'certificate'] as const;
export type CredentialType = (typeof CREDENTIAL_TYPES)[number];

/** Secret fields, sealed together and never returned. */
export const SECRET_FIELDS = ['password', 'private_key', 'passphrase', 'token', 'certificate'] as const;
export type SecretField = (typeof SECRET_FIELDS)[number];
export type SecretMaterial = Partial<Record<SecretField, string>>;

/** Plain (non-secret) fields that depend on the type. */
type PlainField = 'username' | 'domain' | 'auth';

interface TypeRule {
  required: Array<SecretField | PlainField>;
  /** At least one of these must be present. */
  oneOf?: SecretField[];
  allowed: Array<SecretField | PlainField>;
}

const RULES: Record<CredentialType, TypeRule> = {
  ssh: { required: ['username'], oneOf: ['private_key', 'password'], allowed: ['username', 'password', 'private_key', 'passphrase'] },
  winrm: { required: ['username', 'password'], allowed: ['username', 'password', 'domain', 'auth'] },
  password: { required: ['username', 'password'], allowed: ['username', 'password', 'domain'] },
  api_token: { required: ['token'], allowed: ['token', 'username'] },
  certificate: { required: ['certificate', 'private_key'], allowed: ['certificate', 'private_key', 'passphrase', 'username'] },
};

/** Metadata derived from the material (safe to show). */
export interface DerivedInfo {
  publicKeyFingerprint: string | null;
  certificateInfo: { subject: string; issuer: string; valid_from: string; valid_to: string; fingerprint: string } | null;
}

/** PKCS#8 text as ssh2 reads it; a missing or wrong passphrase, or a key type SSH has no use for, is the caller's fault. */
function readablePkcs8(privateKey: string, passphrase: string | undefined): string {
  try {
    return ssh2KeyText(privateKey, passphrase);
  } catch (e) {
    if (/ENCRYPTED/.test(privateKey)) {
      throw passphrase
        ? new ValidationError('passphrase does not decrypt the private key', 'passphrase')
        : new ValidationError('passphrase is required: the private key is encrypted', 'passphrase');
    }
    throw new ValidationError(`private_key is not a usable SSH private key: ${(e as Error).message}`, 'private_key');
  }
}

function parseSshKey(privateKey: string, passphrase: string | undefined): string {
  const parsed = ssh2.utils.parseKey(readablePkcs8(privateKey, passphrase), passphrase);
  if (parsed instanceof Error) {
    if (/encrypted/i.test(parsed.message) && !passphrase) {
      throw new ValidationError('passphrase is required: the private key is encrypted', 'passphrase');
    }
    if (passphrase && /(decrypt|passphrase|bad)/i.test(parsed.message)) {
      throw new ValidationError('passphrase does not decrypt the private key', 'passphrase');
    }
    throw new ValidationError('private_key is not a valid SSH private key', 'private_key');
  }
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key?.isPrivateKey()) {
    throw new ValidationError('private_key is a public key; a private key is required', 'private_key');
  }
  return sshFingerprint(key.getPublicSSH());
}

function parseCertificate(pem: string, privateKey: string, passphrase: string | undefined): NonNullable<DerivedInfo['certificateInfo']> {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new ValidationError('certificate is not a valid PEM certificate', 'certificate');
  }
  let key;
  try {
    key = createPrivateKey({ key: privateKey, passphrase });
  } catch {
    throw new ValidationError(passphrase ? 'passphrase does not decrypt the private key' : 'private_key is not a valid PEM private key', passphrase ? 'passphrase' : 'private_key');
  }
  if (!cert.checkPrivateKey(key)) {
    throw new ValidationError('private_key does not match the certificate', 'private_key');
  }
  return { subject: cert.subject, issuer: cert.issuer, valid_from: cert.validFrom, valid_to: cert.validTo, fingerprint: cert.fingerprint256 };
}

/**
 * Checks that `plain` + `secrets` form a complete credential of `type` and derives its metadata.
 * Throws ValidationError naming the first field at fault.
 */
export function checkMaterial(type: CredentialType, plain: Partial<Record<PlainField, string | null>>, secrets: SecretMaterial): DerivedInfo {
  const rule = RULES[type];
  const present = (f: SecretField | PlainField) => Boolean(f in secrets ? secrets[f as SecretField] : plain[f as PlainField]);
  for (const field of [...SECRET_FIELDS, 'domain', 'auth'] as const) {
    if (present(field) && !rule.allowed.includes(field)) {
      throw new ValidationError(`${field} does not apply to ${type} credentials`, field);
    }
  }
  for (const field of rule.required) {
    if (!present(field)) {
      throw new ValidationError(`${field} is required for ${type} credentials`, field);
    }
  }
  if (rule.oneOf && !rule.oneOf.some(present)) {
    throw new ValidationError(`${type} credentials need ${rule.oneOf.join(' or ')}`, rule.oneOf[0]);
  }
  if (secrets.passphrase && !secrets.private_key) {
    throw new ValidationError('passphrase only applies together with private_key', 'passphrase');
  }
  if (type === 'ssh' && secrets.private_key) {
    return { publicKeyFingerprint: parseSshKey(secrets.private_key, secrets.passphrase), certificateInfo: null };
  }
  if (type === 'certificate') {
    return { publicKeyFingerprint: null, certificateInfo: parseCertificate(secrets.certificate ?? '', secrets.private_key ?? '', secrets.passphrase) };
  }
  return { publicKeyFingerprint: null, certificateInfo: null };
}
