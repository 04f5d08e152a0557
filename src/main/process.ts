/** Common start-up for every command: config → logger → deps, with errors made readable. */
import type { Config, ConfigOverrides } from '../config.ts';
import { loadConfig, redactConfig } from '../config.ts';
import { createDeps, type Deps, type DepsOptions } from '../deps.ts';
import { createLogger, type Logger } from '../logging.ts';

/** Loads config from the environment and CLI flags (throws ConfigError listing every issue). */
export function configFrom(overrides: ConfigOverrides): Config {
  // eslint-disable-next-line no-restricted-properties -- the process environment enters here only
  return loadConfig(process.env, overrides);
}

/** Creates the logger and deps for a command, logging the effective (redacted) config. */
export async function bootProcess(config: Config, role: string, options: Omit<DepsOptions, 'logger'> = {}): Promise<{ deps: Deps; logger: Logger }> {
  const logger = createLogger(config.logLevel).child({ role });
  logger.info({ config: redactConfig(config) }, 'effective configuration');
  const deps = await createDeps(config, { ...options, logger });
  return { deps, logger };
}
