/**
 * Runs catalog steps on the test sshd the way the executor does: a `command` is rendered with the
 * strict template engine over `params` and `target` and run through its shell; a `script` is
 * uploaded over SFTP to /tmp, run by its interpreter with `OC_PARAM_<NAME>` environment variables
 * and its literal `args` (each single-quoted after the path) and removed (src/worker/steps.ts).
 * Outputs are read with parseOutputs.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { connectSsh, type ExecResult, type SshConnection } from '../../src/executor/ssh.ts';
import type { ScriptImplementation } from '../../src/libraries/manifest.ts';
import { parseOutputs } from '../../src/shared/output.ts';
import { createTemplateEngine } from '../../src/shared/templating.ts';
import { SSH_TEST_USER, type Sshd } from '../sshd.ts';
import { getCatalogStep, implementationItems, loadCatalog, type ParamValues, resolveParams } from './catalog.ts';

/** What one step printed and returned. */
export interface StepRun {
  exitCode: number | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
}

/** How the harness wraps a step (the step's own command or script never sees these). */
export interface RunOptions {
  /** Directories put before the session's PATH, e.g. one holding a stand-in systemctl. */
  pathPrepend?: string[];
  /** Directories put after it, e.g. /usr/sbin as a root login's PATH has it. */
  pathAppend?: string[];
}

/** Steps run over one SSH connection. */
export interface StepRunner {
  run(library: string, step: string, params?: Record<string, unknown>, options?: RunOptions): Promise<StepRun>;
  /** A plain command on the test host (for facts to compare with, and fixtures). */
  exec(command: string): Promise<ExecResult>;
  /** Writes a file on the test host as the test user. */
  writeFile(path: string, content: string | Buffer, mode?: number): Promise<void>;
  /** `library/step` of every step run so far. */
  readonly ran: ReadonlySet<string>;
  close(): void;
}

/** POSIX single quoting. */
export const shQuote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;

const INTERPRETERS: Record<string, string> = { sh: 'sh', bash: 'bash', python3: 'python3' };

/** A command line for `shell`, as src/worker/steps.ts builds it for SSH. */
function shellCommand(command: string, shell: string | undefined): string {
  switch (shell ?? 'sh') {
    case 'sh':
      return command;
    case 'bash':
      return `bash -c ${shQuote(command)}`;
    default:
      throw new Error(`shell ${String(shell)} does not run over SSH`);
  }
}

function pathAssignment(options: RunOptions): string[] {
  if (!options.pathPrepend?.length && !options.pathAppend?.length) {
    return [];
  }
  return [`PATH=${[...(options.pathPrepend ?? []).map(shQuote), '"$PATH"', ...(options.pathAppend ?? []).map(shQuote)].join(':')}`];
}

/** Connects to `sshd` as the test user. */
export async function createStepRunner(sshd: Sshd): Promise<StepRunner> {
  const conn: SshConnection = await connectSsh({ host: sshd.host, port: sshd.port, username: SSH_TEST_USER, privateKey: sshd.clientKey, expectedHostKey: sshd.hostKeyFingerprint });
  const engine = createTemplateEngine();
  const target = { id: 1, name: 'catalog-test', host: sshd.host, port: sshd.port, os_type: 'linux', tags: ['catalog'] };
  const ran = new Set<string>();

  const writeFile = async (path: string, content: string | Buffer, mode = 0o644) => {
    const sftp = await conn.sftp();
    try {
      await new Promise<void>((resolve, reject) => sftp.writeFile(path, content, { mode }, (err) => (err ? reject(err) : resolve())));
    } finally {
      sftp.end();
    }
  };

  const runScript = async (dir: string, item: ScriptImplementation, params: ParamValues, options: RunOptions) => {
    const { file, shell, args = [] } = item;
    const interpreter = INTERPRETERS[shell ?? 'sh'];
    if (!interpreter) {
      throw new Error(`shell ${String(shell)} does not run over SSH`);
    }
    const path = `/tmp/oc-lib-${randomBytes(6).toString('hex')}-${basename(file)}`;
    await writeFile(path, readFileSync(join(dir, file)), 0o700);
    const vars = Object.entries(params).map(([k, v]) => `OC_PARAM_${k.toUpperCase()}=${shQuote(String(v))}`);
    const argv = [path, ...args.map(shQuote)].join(' ');
    return conn.exec(`${[...pathAssignment(options), ...vars].join(' ')} ${interpreter} ${argv}; rc=$?; rm -f ${path}; exit $rc`, { timeoutMs: 60_000 });
  };

  return {
    ran,
    async run(libraryId, stepName, values = {}, options = {}) {
      const { library, step } = getCatalogStep(libraryId, stepName);
      assert.ok(step.platforms.includes('linux') || step.platforms.includes('any'), `${libraryId}/${stepName} is not a Linux step`);
      const params = resolveParams(step, values);
      ran.add(`${libraryId}/${stepName}`);
      const run: StepRun = { exitCode: 0, stdout: '', stderr: '', outputs: {} };
      for (const item of implementationItems(step)) {
        let result: ExecResult;
        if (item.type === 'command') {
          const command = shellCommand(engine.render(item.command, { params, target }), item.shell);
          const path = pathAssignment(options);
          result = await conn.exec(path.length > 0 ? `${path[0]}; export PATH; ${command}` : command, { timeoutMs: 60_000 });
        } else if (item.type === 'script') {
          result = await runScript(library.dir, item, params, options);
        } else {
          throw new Error(`${libraryId}/${stepName}: http implementations run on the server, not over SSH`);
        }
        run.stdout += result.stdout;
        run.stderr += result.stderr;
        run.exitCode = result.exitCode;
        Object.assign(run.outputs, parseOutputs(result.stdout));
        if (result.exitCode !== 0) {
          break;
        }
      }
      return run;
    },
    exec: (command) => conn.exec(command, { timeoutMs: 60_000 }),
    writeFile,
    close: () => conn.close(),
  };
}

/** Asserts the exit code, showing what the step printed when it differs. */
export function assertExit(run: StepRun, code: number): void {
  assert.equal(run.exitCode, code, `exit ${run.exitCode}, expected ${code}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}`);
}

/** Asserts that every Linux step of `libraryId` was run by `runner`. */
export function assertEveryLinuxStepRan(runner: StepRunner, libraryId: string): void {
  const steps = loadCatalog().find((l) => l.manifest.id === libraryId)?.manifest.steps ?? [];
  assert.ok(steps.length > 0, `the catalog has no library ${libraryId}`);
  const missing = steps.filter((s) => s.platforms.includes('linux') || s.platforms.includes('any')).filter((s) => !runner.ran.has(`${libraryId}/${s.name}`));
  assert.deepEqual(
    missing.map((s) => s.name),
    [],
    `steps of ${libraryId} never run by this suite`,
  );
}
