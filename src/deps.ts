/**
 * The composition root: builds every resource and service once from the config. The API, the
 * worker, the scheduler and the CLI all start from here. Resources are released LIFO.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';

import { openDatabase, type Database } from './db/database.ts';
import { migrate } from './db/migrate.ts';
import type { Db } from './db/schema.ts';
import type { Config } from './config.ts';
import type { Logger } from './logging.ts';
import { type AuditService, createAuditRepo, createAuditService } from './modules/audit/index.ts';
import { type AuthService, createAuthRepo, createAuthService, createTokenCodec } from './modules/auth/index.ts';
import { createCredentialsRepo, createCredentialsService, type CredentialsService } from './modules/credentials/index.ts';
import {
  createCredentialReferences,
  createGroupsRepo,
  createGroupsService,
  createTargetConnector,
  createTargetsRepo,
  createTargetsService,
  type GroupsService,
  type TargetConnector,
  type TargetsService,
} from './modules/targets/index.ts';
import { createExecutorService, type ExecutorService } from './modules/executor/index.ts';
import { createFilesService, type FilesService } from './modules/files/index.ts';
import { createJobsRepo, createJobsService, type JobsService } from './modules/jobs/index.ts';
import { createRunEvents, createRunsRepo, createRunsService, type RunEvents, type RunsRepo, type RunsService } from './modules/runs/index.ts';
import { createUsersRepo, createUsersService, type UsersService } from './modules/users/index.ts';
import { createSecretSettings, type SecretSettings } from './secrets/secret-settings.ts';
import { loadKeyring } from './secrets/keyring.ts';
import { type Clock, systemClock } from './shared/clock.ts';
import { createTemplateEngine, type TemplateEngine } from './shared/templating.ts';
import { createDiscoveryRepo, createDiscoveryService, type DiscoveryRepo, type DiscoveryService } from './modules/discovery/index.ts';
import { createLibrariesRepo, createLibrariesService, type LibrariesService } from './modules/libraries/index.ts';
import { createNotificationsRepo, createNotificationsService, eventOfStatus, type NotificationsService } from './modules/notifications/index.ts';
import { createSchedulerLoop, createSchedulerRepo, createSchedulerService, type SchedulerLoop, type SchedulerService } from './modules/scheduler/index.ts';
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
  credentials: CredentialsService;
  targets: TargetsService;
  groups: GroupsService;
  targetConnector: TargetConnector;
  jobs: JobsService;
  templates: TemplateEngine;
  runsRepo: RunsRepo;
  runEvents: RunEvents;
  runs: RunsService;
  files: FilesService;
  executor: ExecutorService;
  scheduler: SchedulerService;
  notifications: NotificationsService;
  libraries: LibrariesService;
  discovery: DiscoveryService;
  discoveryRepo: DiscoveryRepo;
  /** Fires due schedules; started by the processes that schedule (start, scheduler). */
  schedulerLoop: SchedulerLoop;
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
  /** Use this keyring instead of the configured one (key rotation). */
  keyring?: Keyring;
}

/** Opens the database from config: PostgreSQL with a URL, otherwise embedded PGlite. */
export function openConfiguredDatabase(config: Config, logger: Logger): Promise<Database> {
  return config.db.url
    ? openDatabase({ kind: 'postgres', url: config.db.url, poolMax: config.db.poolMax, onError: (err) => logger.warn({ err }, 'idle database connection lost') })
    : openDatabase({ kind: 'pglite', dataDir: config.dataDir });
}

/** The domain services every process shares. */
type Modules = Pick<Deps, 'secretSettings' | 'audit' | 'auth' | 'users' | 'credentials' | 'targets' | 'groups' | 'targetConnector' | 'jobs' | 'templates' | 'runsRepo' | 'runEvents' | 'runs' | 'files' | 'executor' | 'scheduler' | 'schedulerLoop' | 'notifications' | 'discovery' | 'discoveryRepo' | 'libraries'>;

/** Wires the modules over an open database; each gets only what it needs. */
async function createModules(config: Config, database: Database, keyring: Keyring, queue: Queue | undefined, clock: Clock, logger: Logger): Promise<Modules> {
  const { db } = database;
  const audit = createAuditService({ repo: createAuditRepo(db) });
  const secretSettings = createSecretSettings(db, keyring);
  const secret = config.auth.jwtSecret ?? (await secretSettings.getOrCreate('jwt_secret', () => randomBytes(48).toString('base64url')));
  const tokens = createTokenCodec(secret, { accessS: config.auth.accessTtlS, refreshS: config.auth.refreshTtlS });
  const auth = createAuthService({ db, repo: createAuthRepo(db), tokens, audit, clock, logger, limits: config.auth });
  const users = createUsersService({ db, repo: createUsersRepo(db), audit, clock });
  const credentials = createCredentialsService({ db, repo: createCredentialsRepo(db), keyring, audit, clock, references: createCredentialReferences(db) });
  const targetsRepo = createTargetsRepo(db);
  const groupsRepo = createGroupsRepo(db);
  const targets = createTargetsService({ db, repo: targetsRepo, groups: groupsRepo, credentials, audit, clock });
  const groups = createGroupsService({ db, repo: groupsRepo, targets: targetsRepo, audit, clock });
  const targetConnector = createTargetConnector({ repo: targetsRepo, credentials, audit, clock });
  const templates = createTemplateEngine();
  const jobsRepo = createJobsRepo(db);
  const notificationsRepo = createNotificationsRepo(db);
  const notifications = createNotificationsService({ db, repo: notificationsRepo, queue, templates, secretSettings, credentials, audit, clock, publicUrl: config.notify.publicUrl });
  const libraries = createLibrariesService({ db, repo: createLibrariesRepo(db), secretSettings, audit, clock });
  const jobs = createJobsService({ db, repo: jobsRepo, credentials, audit, clock, templates, checkNotifyDestination: notifications.checkNotifyDestination, checkLibraryStep: libraries.checkJobStep,
    // The scheduler is built below, on top of jobs and runs; this is called only once everything is.
    checkSchedules: (jobId, declarations) => scheduler.checkJobParameters(jobId, declarations) });
  const runsRepo = createRunsRepo(db);
  const runEvents = createRunEvents({ repo: runsRepo, database, logger });
  const onRunEvent = async (runId: number, change: { started: true } | { finished: string }) => {
    const event = 'started' in change ? 'job.started' : eventOfStatus(change.finished);
    if (event) {
      await notifications.runEvent(runId, event).catch((err: unknown) => logger.error({ err, run_id: runId, event }, 'could not queue the notifications of a run'));
    }
  };
  const runs = createRunsService({ db, repo: runsRepo, findJob: (id) => jobsRepo.findById(id), targets, groups, keyring, queue, events: runEvents, audit, clock, onRunEvent, expandSteps: libraries.expandSteps });
  const files = createFilesService({ root: config.files.dir ?? join(config.dataDir, 'files'), maxUploadBytes: config.files.maxUploadBytes, audit });
  const executor = createExecutorService({ runs, jobs, targets, connector: targetConnector, credentials, audit, filesRoot: files.root, maxOutputBytes: config.worker.maxOutputBytes, templates });
  const discoveryRepo = createDiscoveryRepo(db);
  const discovery = createDiscoveryService({ repo: discoveryRepo, queue, targets, groups, credentials, audit, clock, settings: config.discovery });
  const schedulerRepo = createSchedulerRepo(db);
  const findJob = (id: number) => jobsRepo.findById(id);
  const scheduler = createSchedulerService({ db, repo: schedulerRepo, findJob, targets, groups, runs, keyring, audit, clock });
  const schedulerLoop = createSchedulerLoop({ db, database, repo: schedulerRepo, runs, parameters: scheduler.parameterValues, clock, logger });
  return { secretSettings, audit, auth, users, credentials, targets, groups, targetConnector, jobs, templates, runsRepo, runEvents, runs, files, executor, scheduler, schedulerLoop, notifications, discovery, discoveryRepo, libraries };
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
    const keyring = options.keyring ?? loadKeyring(config);
    const database = options.database ?? (await openConfiguredDatabase(config, logger));
    if (!options.database) {
      releasers.push(() => database.close());
    }
    if (options.migrate !== false) {
      await migrate(database.db);
    }
    let queue: Queue | undefined;
    if (options.queue !== false) {
      const started = await startQueue(database, logger);
      releasers.push(() => started.stop({ graceful: true, wait: true }));
      queue = started;
    }
    const modules = await createModules(config, database, keyring, queue, clock, logger);
    releasers.push(() => modules.runEvents.flush());
    return { config, logger, clock, database, db: database.db, keyring, queue, ...modules, release };
  } catch (e) {
    await release();
    throw e;
  }
}
