/**
 * First start: create the `admin` user. A generated password is shown once on the console and
 * written to DATA_DIR/initial-admin-password (0600) — never logged.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Deps } from '../deps.ts';

/** Creates the first admin if the database has no user; `print` shows the generated password. */
export async function bootstrapAdmin(deps: Deps, print: (text: string) => void): Promise<void> {
  const { config, logger, users } = deps;
  const result = await users.ensureInitialAdmin(config.auth.adminPassword);
  if (!result.created) {
    return;
  }
  if (!result.generatedPassword) {
    logger.info('created user admin with OPSCONDUCTOR_ADMIN_PASSWORD');
    return;
  }
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const file = join(config.dataDir, 'initial-admin-password');
  writeFileSync(file, `${result.generatedPassword}\n`, { mode: 0o600 });
  print(
    [
      '',
      '==================================================================',
      ' OpsConductor created the first user.',
      `   username: admin`,
      `   password: ${result.generatedPassword}`,
      ` It is also in ${file} (mode 0600). Change it after logging in.`,
      '==================================================================',
      '',
    ].join('\n'),
  );
  logger.info({ file }, 'created user admin with a generated password (shown once on the console)');
}
