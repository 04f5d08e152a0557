#!/usr/bin/env node
// Runs every *.test.ts under src/ and test/ with node:test (through tsx). Node 20's `node --test`
// finds no .ts files given a directory or a quoted glob, so the files are listed here. With
// OPSCONDUCTOR_TEST_DATABASE_URL the migrated template database is prepared first. Exits non-zero
// when any test fails or when no test ran at all.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const filters = process.argv.slice(2);

function findTests(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && entry.name !== 'node_modules') {
      out.push(...findTests(path));
    } else if (entry.isFile() && entry.name.endsWith('.test.ts')) {
      out.push(relative(root, path));
    }
  }
  return out;
}

const files = ['src', 'test']
  .flatMap((d) => findTests(join(root, d)))
  .filter((f) => filters.length === 0 || filters.some((flt) => f.includes(flt)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}

const setup = spawnSync(process.execPath, ['--import', 'tsx', 'test/global-setup.ts'], { cwd: root, stdio: 'inherit' });
if (setup.status !== 0) {
  console.error('run-tests: global setup failed');
  process.exit(1);
}

const tapFile = join(mkdtempSync(join(tmpdir(), 'oc-tests-')), 'results.tap');
const concurrency = process.env.OPSCONDUCTOR_TEST_CONCURRENCY ?? String(Math.max(2, availableParallelism()));
const run = spawnSync(
  process.execPath,
  [
    '--import', 'tsx',
    '--test',
    `--test-concurrency=${concurrency}`,
    '--test-reporter=spec', '--test-reporter-destination=stdout',
    '--test-reporter=tap', `--test-reporter-destination=${tapFile}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit' },
);

const tap = readFileSync(tapFile, 'utf8');
const count = (name) => Number(new RegExp(`^# ${name} (\\d+)$`, 'm').exec(tap)?.[1] ?? 0);
const [tests, pass, fail, skipped] = [count('tests'), count('pass'), count('fail'), count('skipped')];
console.log(`\nrun-tests: ${files.length} files, ${tests} tests`);
console.log(`${pass} passed, ${fail} failed, ${skipped} skipped`);
if (tests === 0) {
  console.error('run-tests: zero tests ran');
  process.exit(1);
}
if (process.env.OPSCONDUCTOR_REQUIRE_ALL === '1' && skipped > 0) {
  console.error('run-tests: tests were skipped but OPSCONDUCTOR_REQUIRE_ALL=1');
  process.exit(1);
}
process.exit(run.status === 0 && fail === 0 ? 0 : 1);
