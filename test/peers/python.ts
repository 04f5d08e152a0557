/**
 * Running the Python peers in this directory (pywinrm and ntlm-auth from Debian's python3-winrm):
 * clients nobody here wrote, to prove our WinRM pieces interoperate.
 */
import { execFile, execFileSync } from 'node:child_process';
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

/**
 * Runs `test/peers/<script>` with `input` as JSON on stdin; resolves with its JSON output. Never
 * synchronous: the peer may be talking to a server in this very process.
 */
export function runPeer<T>(script: string, input: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = execFile(PYTHON, [join(import.meta.dirname, script)], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, OPENSSL_CONF: legacyOpenSslConf() } }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${script} failed: ${err.message}\n${stderr}`));
        return;
      }
      resolve(JSON.parse(stdout) as T);
    });
    child.stdin?.end(JSON.stringify(input));
  });
}
