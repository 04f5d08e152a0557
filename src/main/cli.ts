/** The `opsconductor` command line. */
import { Command, InvalidArgumentError, Option } from 'commander';

import { ConfigError, type ConfigOverrides } from '../config.ts';
import { DataDirLockedError } from '../db/data-dir-lock.ts';
import { MasterKeyError } from '../secrets/keyring.ts';
import { parseServiceList } from '../services.ts';
import { VERSION } from '../version.ts';
import { runMigrate, runResetPassword, runRotateMasterKey } from './admin.ts';
import { runBackground } from './background.ts';
import { configFrom } from './process.ts';
import { runApi } from './start.ts';

function int(value: string): number {
  if (!/^\d+$/.test(value)) {
    throw new InvalidArgumentError('must be a whole number');
  }
  return Number(value);
}

/** Flags every command that opens the database accepts. */
function withDatabaseOptions(command: Command): Command {
  return command
    .addOption(new Option('--data-dir <dir>', 'embedded database and files directory').env('OPSCONDUCTOR_DATA_DIR'))
    .addOption(new Option('--database-url <url>', 'PostgreSQL URL (omit for embedded PGlite)'))
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent');
}

type Flags = { port?: number; host?: string; servicePorts?: boolean; dataDir?: string; databaseUrl?: string; concurrency?: number; logLevel?: string };

function overrides(flags: Flags): ConfigOverrides {
  return {
    port: flags.port,
    host: flags.host,
    servicePorts: flags.servicePorts === false ? false : undefined,
    dataDir: flags.dataDir,
    databaseUrl: flags.databaseUrl,
    concurrency: flags.concurrency,
    logLevel: flags.logLevel,
  };
}

/** Builds the program. */
function buildCli(): Command {
  const program = new Command('opsconductor').description('IT-operations automation platform').version(VERSION);

  withDatabaseOptions(program.command('start').description('run everything in one process: gateway, service ports, worker, scheduler'))
    .option('-p, --port <port>', 'gateway port; services listen on port + offset (default 3000)', int)
    .option('--host <host>', 'interface to bind (default 127.0.0.1)')
    .option('--no-service-ports', 'serve the gateway port only')
    .option('--concurrency <n>', 'in-process worker concurrency', int)
    .action((flags: Flags) => runApi(configFrom(overrides(flags)), 'start'));

  withDatabaseOptions(program.command('serve').description('serve only some services\' routes (microservice deployment)'))
    .requiredOption('--services <list>', 'comma-separated: auth,users,credentials,targets,jobs,executor,scheduler,notification,discovery,libraries')
    .option('-p, --port <port>', 'port to listen on (default 3000)', int)
    .option('--host <host>', 'interface to bind (default 127.0.0.1)')
    .action((flags: Flags & { services: string }) => runApi(configFrom(overrides(flags)), 'serve', parseServiceList(flags.services)));

  withDatabaseOptions(program.command('worker').description('run an executor worker (as many as you like, on any machine sharing the database)'))
    .option('--concurrency <n>', 'run-targets handled at once', int)
    .action((flags: Flags) => runBackground(configFrom(overrides(flags)), 'worker'));

  withDatabaseOptions(program.command('scheduler').description('run the scheduler (run two or more for high availability)')).action((flags: Flags) =>
    runBackground(configFrom(overrides(flags)), 'scheduler'),
  );

  withDatabaseOptions(program.command('migrate').description('apply database migrations and exit')).action((flags: Flags) => runMigrate(configFrom(overrides(flags))));

  const admin = program.command('admin').description('administrative commands');
  withDatabaseOptions(admin.command('reset-password').description('set a new password for a user (printed, or read from stdin)'))
    .argument('<username>', 'user to reset')
    .option('--password-stdin', 'read the new password from standard input')
    .action((username: string, flags: Flags & { passwordStdin?: boolean }) =>
      runResetPassword(configFrom(overrides(flags)), username, Boolean(flags.passwordStdin)),
    );
  withDatabaseOptions(admin.command('rotate-master-key').description('re-wrap every stored secret under a new master key (safe to re-run after an interruption)')).action(
    (flags: Flags) => runRotateMasterKey(configFrom(overrides(flags))),
  );
  return program;
}

/** Errors whose message is the whole story (no stack trace for the operator). */
function isOperatorError(e: unknown): e is Error {
  return e instanceof ConfigError || e instanceof DataDirLockedError || e instanceof MasterKeyError || (e instanceof Error && /^(Unknown service|The password|User .* not found)/.test(e.message));
}

buildCli()
  .parseAsync(process.argv)
  .catch((e: unknown) => {
    process.stderr.write(`opsconductor: ${isOperatorError(e) ? e.message : String((e as Error)?.stack ?? e)}\n`);
    process.exit(isOperatorError(e) ? 2 : 1);
  });
