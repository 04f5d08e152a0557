/**
 * The composition root: builds every resource and service once from the config. The API, the
 * worker, the scheduler and the CLI all start from here. Resources are released LIFO.
 */
import { randomBytes } from 'node:crypto';

import { openDatabase, type Database } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import type { Db } from './db/schema.ts';
import type { Config } from './config.ts';
import type { Logger } from './logging.ts';
import { type AuditService, createAuditRepo, createAuditService } from './modules/audit/index.ts';
import { type AuthService, createAuthRepo, createAuthService, createTokenCodec } from './modules/auth/index.ts';
import { createUsersRepo, createUsersService, type UsersService } from './modules/users/index.ts';
import { createSecretSettings, type SecretSettings } from './secrets/secret-settings.ts';
import { loadKeyring } from './secrets/keyring.ts';
import { type Clock, systemClock } from './shared/clock.ts';
import type { Keyring } from './shared/crypto-box.ts';
import { type Queue, startQueue } from './worker/queue.ts';

/** Everything a process needs. */
export interface Deps {
  config: Config;
  logger: Logger;
  clock: Clock;
  database: Database;
  db: Db;
  /** Master keys sealing every stored secret. */
  keyring: Keyring;
  secretSettings: SecretSettings;
  /** The background queue; absent in processes that do no background work (migrate, admin). */
  queue: Queue | undefined;
  audit: AuditService;
  auth: AuthService;
  users: UsersService;
  /** Releases every resource, last acquired first. */
  release(): Promise<void>;
}

/** Options for {@link createDeps}. */
export interface DepsOptions {
  logger: Logger;
  clock?: Clock;
  /** Use this database instead of opening one from config (tests). */
  database?: Database;
  /** Apply migrations (default true). */
  migrate?: boolean;
  /** Start the pg-boss queue (default true). */
  queue?: boolean;
}

/** Opens the database from config: PostgreSQL with a URL, otherwise embedded PGlite. */
export function openConfiguredDatabase(config: Config, logger: Logger): Promise<Database> {
  return config.db.url
    ? openDatabase({ kind: 'postgres', url: config.db.url, poolMax: config.db.poolMax, onError: (err) => logger.warn({ err }, 'idle database connection lost') })
    : openDatabase({ kind: 'pglite', dataDir: config.dataDir });
}

/** Builds all dependencies; on failure releases what was already acquired. */
export async function createDeps(config: Config, options: DepsOptions): Promise<Deps> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const releasers: Array<() => Promise<void>> = [];
  const release = async () => {
    while (releasers.length > 0) {
      await releasers.pop()?.();
    }
  };
  try {
    // Before touching the database: a missing master key must stop the start first.
    const keyring = loadKeyring(config);
    const database = options.database ?? (await openConfiguredDatabase(config, logger));
    if (!options.database) {
      releasers.push(() => database.close());
    }
    const { db } = database;
    if (options.migrate !== false) {
      await migrate(db);
    }
    const audit = createAuditService({ repo: createAuditRepo(db) });
    const authRepo = createAuthRepo(db);
    const secretSettings = createSecretSettings(db, keyring);
    const secret = config.auth.jwtSecret ?? (await secretSettings.getOrCreate('jwt_secret', () => randomBytes(48).toString('base64url')));
    const tokens = createTokenCodec(secret, { accessS: config.auth.accessTtlS, refreshS: config.auth.refreshTtlS });
    const auth = createAuthService({ db, repo: authRepo, tokens, audit, clock, logger, limits: config.auth });
    const users = createUsersService({ db, repo: createUsersRepo(db), audit, clock });
    let queue: Queue | undefined;
    if (options.queue !== false) {
      const started = await startQueue(database, logger);
      releasers.push(() => started.stop({ graceful: true, wait: true }));
      queue = started;
    }
    return { config, logger, clock, database, db, keyring, secretSettings, queue, audit, auth, users, release };
  } catch (e) {
    await release();
    throw e;
  }
}
