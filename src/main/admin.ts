/** `opsconductor migrate` and `opsconductor admin …` one-shot commands. */
import type { Config } from '../config.ts';
import { planRotation, rotate } from '../secrets/rotation.ts';
import { generatePassword } from '../shared/passwords.ts';
import { bootProcess } from './process.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Applies pending migrations and exits. */
export async function runMigrate(config: Config): Promise<void> {
  const { deps, logger } = await bootProcess(config, 'migrate', { queue: false });
  logger.info('database schema is up to date');
  await deps.release();
}

/** Sets a user's password (generated, or read from stdin), re-enables them and ends their sessions. */
export async function runResetPassword(config: Config, username: string, fromStdin: boolean): Promise<void> {
  const password = fromStdin ? await readStdin() : generatePassword();
  if (password.length < 12) {
    throw new Error('The password must be at least 12 characters');
  }
  const { deps } = await bootProcess(config, 'admin', { queue: false });
  try {
    await deps.users.resetPassword(username, password);
    process.stdout.write(fromStdin ? `Password of ${username} changed.\n` : `New password of ${username}: ${password}\n`);
  } finally {
    await deps.release();
  }
}

/** Re-wraps every secret under a new master key (embedded: generated; otherwise OPSCONDUCTOR_NEW_MASTER_KEY). */
export async function runRotateMasterKey(config: Config): Promise<void> {
  const plan = planRotation(config);
  const { deps, logger } = await bootProcess(config, 'admin', { queue: false, keyring: plan.keyring });
  try {
    const changed = await rotate(plan, [deps.credentials, deps.secretSettings]);
    logger.info({ changed, key_id: plan.keyring.current.id }, 'master key rotated');
    process.stdout.write(`Re-wrapped ${changed} secret(s). ${plan.instructions}\n`);
  } finally {
    await deps.release();
  }
}
