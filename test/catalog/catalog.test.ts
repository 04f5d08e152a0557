/**
 * The shipped catalog as data: every manifest parses and passes the bundle validator, names the
 * steps issue #9 asks for, declares parameters a job can fill (types, defaults, enums, secrets),
 * and references script files that exist, parse, and are all used. Command templates reference
 * only declared parameters and target fields and render under the strict engine. No target is
 * contacted here; the per-library suites run the steps.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, test } from 'node:test';

import { checkManifest, type LibraryParameter } from '../../src/libraries/manifest.ts';
import { createTemplateEngine } from '../../src/shared/templating.ts';
import { CATALOG_DIR, implementationItems, loadCatalog, resolveParams } from './catalog.ts';

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
      // A job giving only the required values: the job-side check (resolveParams) merges every
      // default and would refuse one of the wrong type or outside the enum.
      const required = Object.fromEntries(
        Object.entries(step.parameters)
          .filter(([, decl]) => decl.required)
          .map(([name, decl]) => [name, sample(decl)]),
      );
      const resolved = resolveParams(step, required);
      for (const [name, decl] of Object.entries(step.parameters)) {
        const p = `${at}.${name}`;
        // Lower case only: OC_PARAM_<NAME> is its upper-case form and must map back to one parameter.
        assert.match(name, /^[a-z][a-z0-9_]*$/, p);
        assert.ok(decl.description, `${p}: description`);
        assert.ok(!(decl.required && decl.default !== undefined), `${p}: required with a default`);
        assert.equal(resolved[name], decl.default ?? required[name], `${p}: the value a job gets without giving one`);
        for (const value of decl.enum ?? []) {
          assert.doesNotThrow(() => resolveParams(step, { ...required, [name]: value }), `${p}: enum value ${JSON.stringify(value)} cannot be given by a job`);
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

  test('steps sharing a script tell it apart by args, and the script refuses a missing or unknown subcommand', () => {
    const byFile = new Map<string, Array<{ at: string; shell: string; args: string[] }>>();
    for (const { dir, id, step } of allSteps) {
      for (const item of implementationItems(step)) {
        if (item.type === 'script') {
          const file = join(dir, item.file);
          byFile.set(file, [...(byFile.get(file) ?? []), { at: `${id}/${step.name}`, shell: item.shell ?? 'sh', args: item.args ?? [] }]);
        }
      }
    }
    const shared = [...byFile].filter(([, uses]) => uses.length > 1);
    assert.deepEqual(shared.map(([file]) => relative(CATALOG_DIR, file)).sort(), ['linux-core/scripts/service.sh', 'web-http/scripts/http_client.py']);
    for (const [file, uses] of shared) {
      const argvs = uses.map((u) => JSON.stringify(u.args));
      assert.equal(new Set(argvs).size, uses.length, `${file}: ${uses.map((u) => u.at).join(', ')} run it with the same args`);
      assert.ok(uses.every((u) => u.args.length > 0), `${file}: every step sharing it names its subcommand`);
      // Without OC_PARAM_* a known subcommand would also exit 2 (a required parameter is missing): the usage message tells them apart.
      for (const args of [[], ['no_such_command']]) {
        const res = spawnSync(uses[0]!.shell, [file, ...args], { encoding: 'utf8' });
        assert.equal(res.status, 2, `${file} ${args.join(' ')}: exit ${res.status}\n${res.stderr}`);
        assert.match(res.stderr, /usage: /, `${file} ${args.join(' ')}`);
      }
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
