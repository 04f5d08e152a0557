/**
 * Running the Python peers in this directory (pywinrm and ntlm-auth from Debian's python3-winrm):
 * clients nobody here wrote, to prove our WinRM pieces interoperate.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Debian's interpreter: the packages are installed for it, not for other pythons on the PATH. */
const PYTHON = '/usr/bin/python3';

/** Why the peers cannot run here, or false. */
export function pywinrmSkip(): string | false {
  try {
    execFileSync(PYTHON, ['-c', 'import winrm, ntlm_auth'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'pywinrm is not installed (apt-get install python3-winrm python3-ntlm-auth)';
  }
}

/**
 * An OpenSSL configuration that also activates the legacy provider: Python's hashlib needs it for
 * MD4 (the NT hash) under OpenSSL 3, as Debian ships it.
 */
let legacyConf: string | undefined;
function legacyOpenSslConf(): string {
  if (!legacyConf) {
    legacyConf = join(mkdtempSync(join(tmpdir(), 'oc-openssl-')), 'legacy.cnf');
    writeFileSync(
      legacyConf,
      ['openssl_conf = init', '[init]', 'providers = providers', '[providers]', 'default = on', 'legacy = on', '[on]', 'activate = 1', ''].join('\n'),
    );
  }
  return legacyConf;
}

/** Runs `test/peers/<script>` with `input` as JSON on stdin; returns its JSON output. */
export function runPeer<T>(script: string, input: unknown): T {
  const output = execFileSync(PYTHON, [join(import.meta.dirname, script)], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    env: { ...process.env, OPENSSL_CONF: legacyOpenSslConf() },
  });
  return JSON.parse(output) as T;
}
