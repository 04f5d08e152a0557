/** End-to-end tests of the real `opsconductor` CLI's help and its refusal of a bad configuration. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';

import { removeTempDirs, runCli, tempDir } from './cli.fixtures.ts';

describe('opsconductor CLI (real processes)', { concurrency: 2 }, () => {
  after(removeTempDirs);

  test('--help works for the program and every command', async () => {
    const commands = ['start', 'serve', 'worker', 'scheduler', 'migrate', 'admin reset-password'];
    const program = await runCli(['--help']);
    assert.equal(program.code, 0, program.stderr);
    assert.match(program.stdout, /Usage: opsconductor /);
    for (const name of ['start', 'serve', 'worker', 'scheduler', 'migrate', 'admin']) {
      assert.match(program.stdout, new RegExp(`^\\s+${name}\\b`, 'm'), `program help lists ${name}`);
    }
    for (const command of commands) {
      const res = await runCli([...command.split(' '), '--help']);
      assert.equal(res.code, 0, `${command}: ${res.stderr}`);
      assert.ok(res.stdout.includes(`Usage: opsconductor ${command} `), `${command} --help:\n${res.stdout}`);
    }
  });

  test('a bad configuration exits 2 naming every problem at once, before touching the disk', async () => {
    const dataDir = join(tempDir(), 'never-created');
    const res = await runCli(['start'], { OPSCONDUCTOR_PORT: 'abc', OPSCONDUCTOR_ADMIN_PASSWORD: 'short', OPSCONDUCTOR_DATA_DIR: dataDir });
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /OPSCONDUCTOR_PORT/);
    assert.match(res.stderr, /OPSCONDUCTOR_ADMIN_PASSWORD/);
    assert.doesNotMatch(res.stderr, /\n\s+at /, 'no stack trace');
    assert.equal(existsSync(dataDir), false);
  });
});
