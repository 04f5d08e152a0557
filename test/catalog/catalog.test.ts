/**
 * The shipped catalog as data: every manifest parses and passes the bundle validator, names the
 * steps issue #9 asks for, declares parameters a job can fill (types, defaults, enums, secrets),
 * and references script files that exist, parse, and are all used. Command templates reference
 * only declared parameters and target fields and render under the strict engine. No target is
 * contacted here; the per-library suites run the steps.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';

import { checkManifest, type LibraryParameter } from '../../src/libraries/manifest.ts';
import { createTemplateEngine } from '../../src/shared/templating.ts';
import { fitsType, implementationItems, loadCatalog } from './catalog.ts';

const catalog = loadCatalog();
const allSteps = catalog.flatMap(({ dir, manifest }) => manifest.steps.map((step) => ({ dir, id: manifest.id, step })));

/** Fields of `target` a step template may read (src/worker/run-target.ts, jobs.templates.ts). */
const TARGET_FIELDS = new Set(['id', 'name', 'host', 'port', 'os_type', 'tags']);
/** The interpreter each script shell needs in its first line. */
const SHEBANGS: Record<string, string> = { sh: '#!/bin/sh', bash: '#!/bin/bash', python3: '#!/usr/bin/env python3' };
/** How each script shell's syntax is checked without running the script. */
const SYNTAX: Record<string, (file: string) => void> = {
  sh: (file) => execFileSync('sh', ['-n', file]),
  bash: (file) => execFileSync('bash', ['-n', file]),
  python3: (file) => execFileSync('python3', ['-c', 'import ast, sys; ast.parse(open(sys.argv[1]).read(), sys.argv[1])', file]),
};

/** A value of the parameter's type, for rendering templates. */
const sample = (decl: LibraryParameter) => decl.default ?? decl.enum?.[0] ?? { string: 'sample', integer: 7, number: 1.5, boolean: true }[decl.type];

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('the shipped catalog', () => {
  test('holds the libraries and steps of issue #9', () => {
    const steps = Object.fromEntries(catalog.map(({ manifest }) => [manifest.id, manifest.steps.map((s) => s.name)]));
    assert.deepEqual(steps, {
      'linux-core': ['get_system_info', 'disk_usage', 'service_status', 'restart_service', 'package_installed', 'tail_log'],
      'network-tools': ['ping_test', 'port_test', 'dns_lookup', 'http_check', 'traceroute'],
      'web-http': ['http_request', 'api_test', 'download_file'],
      'windows-core': ['get_system_info', 'service_control', 'run_powershell', 'registry_read', 'disk_usage'],
    });
  });

  test('every manifest parses, passes the bundle validator and names its directory', () => {
    for (const { dir, manifest } of catalog) {
      assert.doesNotThrow(() => checkManifest(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))), manifest.id);
      assert.equal(manifest.id, relative(join(dir, '..'), dir));
      assert.equal(manifest.version, '1.0.0');
      assert.equal(manifest.author, 'OpsConductor');
      assert.equal(manifest.license, 'Apache-2.0');
      const names = manifest.steps.map((s) => s.name);
      assert.equal(new Set(names).size, names.length, `${manifest.id}: step names are unique`);
    }
  });

  test('every step is described and every parameter can be filled by a job', () => {
    for (const { id, step } of allSteps) {
      const at = `${id}/${step.name}`;
      assert.match(step.name, /^[a-z][a-z0-9_]*$/, at);
      assert.ok(step.display_name && step.description && step.category, `${at}: display_name, description, category`);
      assert.ok(step.platforms.length > 0, `${at}: platforms`);
      for (const [name, decl] of Object.entries(step.parameters)) {
        const p = `${at}.${name}`;
        // Lower case only: OC_PARAM_<NAME> is its upper-case form and must map back to one parameter.
        assert.match(name, /^[a-z][a-z0-9_]*$/, p);
        assert.ok(decl.description, `${p}: description`);
        assert.ok(!(decl.required && decl.default !== undefined), `${p}: required with a default`);
        if (decl.default !== undefined) {
          assert.ok(fitsType(decl.default, decl.type), `${p}: default ${JSON.stringify(decl.default)} is not a ${decl.type}`);
          assert.ok(!decl.enum || decl.enum.includes(decl.default), `${p}: default not in enum`);
        }
        for (const value of decl.enum ?? []) {
          assert.ok(fitsType(value, decl.type), `${p}: enum value ${JSON.stringify(value)} is not a ${decl.type}`);
        }
        assert.ok(!(decl.secret && decl.default !== undefined), `${p}: a secret cannot have a default`);
      }
    }
  });

  test('every script exists inside its library, starts with its interpreter and parses', () => {
    for (const { dir, id, step } of allSteps) {
      for (const item of implementationItems(step)) {
        if (item.type !== 'script') {
          continue;
        }
        const file = join(dir, item.file);
        assert.ok(!relative(dir, file).startsWith('..'), `${id}/${step.name}: ${item.file} leaves the library`);
        assert.ok(statSync(file, { throwIfNoEntry: false })?.isFile(), `${id}/${step.name}: ${item.file} is missing`);
        const shell = item.shell ?? 'sh';
        assert.equal(readFileSync(file, 'utf8').split('\n')[0], SHEBANGS[shell], `${item.file}: first line`);
        assert.doesNotThrow(() => SYNTAX[shell]?.(file), `${item.file} does not parse`);
      }
    }
  });

  test('every file in a library is its manifest or a script one of its steps runs', () => {
    for (const { dir, manifest } of catalog) {
      const used = new Set(manifest.steps.flatMap((s) => implementationItems(s).flatMap((i) => (i.type === 'script' ? [i.file] : []))));
      const stray = filesUnder(dir)
        .map((f) => relative(dir, f))
        .filter((f) => f !== 'manifest.json' && !used.has(f));
      assert.deepEqual(stray, [], `${manifest.id}: files no step uses`);
    }
  });

  test('shells fit the platforms: PowerShell or cmd for Windows, POSIX shells and python3 for Linux', () => {
    for (const { id, step } of allSteps) {
      for (const item of implementationItems(step)) {
        assert.notEqual(item.type, 'http', `${id}/${step.name}: the catalog has no http steps (they would not run from the target)`);
        const shell = 'shell' in item ? (item.shell ?? 'sh') : undefined;
        if (step.platforms.includes('windows')) {
          assert.ok(shell === 'powershell' || shell === 'cmd', `${id}/${step.name}: ${String(shell)} on Windows`);
        } else {
          assert.ok(shell && ['sh', 'bash', 'python3'].includes(shell), `${id}/${step.name}: ${String(shell)} on Linux`);
        }
      }
    }
  });

  test('command templates read only declared parameters (each always present) and target fields, and render', () => {
    const engine = createTemplateEngine();
    const target = { id: 1, name: 'host-1', host: '192.0.2.1', port: 22, os_type: 'linux', tags: [] };
    for (const { id, step } of allSteps) {
      for (const item of implementationItems(step)) {
        if (item.type !== 'command') {
          continue;
        }
        for (const [root, field] of engine.variables(item.command)) {
          const at = `${id}/${step.name}: ${String(root)}.${String(field)}`;
          if (root === 'target') {
            assert.ok(TARGET_FIELDS.has(String(field)), at);
          } else {
            assert.equal(root, 'params', at);
            const decl = step.parameters[String(field)];
            // The engine is strict: a parameter with neither a value nor a default would fail the render.
            assert.ok(decl && (decl.required || decl.default !== undefined), `${at} must be declared, required or defaulted`);
          }
        }
        const params = Object.fromEntries(Object.entries(step.parameters).map(([name, decl]) => [name, sample(decl)]));
        assert.doesNotThrow(() => engine.render(item.command, { params, target }), `${id}/${step.name}`);
      }
    }
  });
});
