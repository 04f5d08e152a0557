/**
 * Self-signed server certificates for TLS tests, made with the `openssl` CLI (CI installs it):
 * the key and certificate PEM, the files they are in, and the SHA-256 fingerprint as openssl
 * prints it — computed by a tool other than the code under test.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A generated certificate. */
export interface TestCert {
  key: string;
  cert: string;
  /** Where the certificate PEM is (to trust it: NODE_EXTRA_CA_CERTS, pywinrm's ca_trust_path). */
  certPath: string;
  /** `AA:BB:…`, uppercase, as openssl and Node print it. */
  fingerprint: string;
}

/**
 * A self-signed certificate (its own CA) valid for a day. `altName` is its subjectAltName.
 * @defaultValue altName 'IP:127.0.0.1'
 */
export function makeSelfSignedCert(altName = 'IP:127.0.0.1'): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'oc-tls-'));
  const [keyPath, certPath] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
  const cn = altName.replace(/^\w+:/, '');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${altName}`], { stdio: 'ignore' });
  const printed = execFileSync('openssl', ['x509', '-in', certPath, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' });
  const fingerprint = /=([0-9A-F:]+)/i.exec(printed)?.[1]?.toUpperCase();
  if (!fingerprint) {
    throw new Error(`openssl printed no fingerprint: ${printed}`);
  }
  return { key: readFileSync(keyPath, 'utf8'), cert: readFileSync(certPath, 'utf8'), certPath, fingerprint };
}
