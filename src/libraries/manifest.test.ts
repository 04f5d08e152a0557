import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BundleError, checkManifest, type LibraryManifest } from './bundle.ts';
import { compareVersions, isValidRange, satisfies } from './semver.ts';

const VALID: LibraryManifest = {
  $schema: 'https://opsconductor.dev/schemas/library-manifest.json',
  id: 'linux-basics',
  name: 'Linux basics',
  version: '2.0.0-beta.1+build.5',
  description: 'Everyday Linux steps',
  author: 'OpsConductor',
  license: 'Apache-2.0',
  homepage: 'https://example.com/linux-basics',
  min_opsconductor_version: '0.1.0',
  dependencies: { 'core-utils': '^1.2.0', 'other-lib': '>=1 <3' },
  steps: [
    {
      name: 'disk_usage',
      display_name: 'Disk usage',
      description: 'df for one mount',
      category: 'storage',
      platforms: ['linux', 'any'],
      parameters: {
        mount: { type: 'string', default: '/', description: 'Mount point' },
        unit: { type: 'string', enum: ['K', 'M', 'G'], default: 'G', description: 'Unit' },
        top: { type: 'integer', default: 5, description: 'Rows' },
        threshold: { type: 'number', default: 0.9, description: 'Fraction' },
        token: { type: 'string', secret: true, required: true, description: 'API token' },
      },
      implementation: { type: 'command', command: 'df -B{{ params.unit }} {{ params.mount }}' },
    },
    {
      name: 'notify_api',
      display_name: 'Notify an API',
      description: 'POST to a URL',
      category: 'http',
      platforms: ['any'],
      parameters: {},
      implementation: [
        { type: 'http', method: 'POST', url: 'https://{{ target.host }}/hook', headers: { 'X-Token': '{{ params.token }}' }, body: { host: '{{ target.name }}' }, expect_status: [200, 204] },
        { type: 'script', shell: 'python3', file: 'scripts/report.py', args: ['summary', '--since', ''] },
      ],
    },
  ],
};

/** The issues checkManifest reports for `value`, as `pointer: message` lines. */
function issues(value: unknown): string[] {
  try {
    checkManifest(value);
  } catch (e) {
    assert.ok(e instanceof BundleError);
    return e.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

const clone = (): LibraryManifest => structuredClone(VALID);

describe('checkManifest', () => {
  test('a manifest using every feature passes and comes back as given', () => {
    assert.deepEqual(checkManifest(clone()), VALID);
  });

  test('top-level fields: required, unknown, id, version, homepage', () => {
    const { license: _license, ...noLicense } = clone();
    assert.deepEqual(issues(noLicense), ['/license: is required']);
    assert.deepEqual(issues({ ...clone(), extra: 1 }), ['/extra: is not allowed here']);
    assert.deepEqual(issues({ ...clone(), id: 'Linux' }), ['/id: must match pattern "^[a-z0-9][a-z0-9-]{1,63}$"']);
    assert.match(issues({ ...clone(), version: 'v1.0.0' })[0] ?? '', /^\/version: must be a semantic version/);
    assert.match(issues({ ...clone(), min_opsconductor_version: '1.0.0.0' })[0] ?? '', /^\/min_opsconductor_version: must be a semantic version/);
    assert.deepEqual(issues({ ...clone(), homepage: 'javascript:alert(1)' }), ['/homepage: must match pattern "^https?://"']);
    assert.deepEqual(issues([]), [': must be object']);
  });

  test('steps: name pattern, platforms, unknown implementation type and fields', () => {
    const m = clone();
    m.steps[0]!.name = '1st';
    m.steps[0]!.platforms = ['linux', 'macos' as never];
    (m.steps[1]!.implementation as unknown[])[0] = { type: 'ssh', command: 'x' };
    (m.steps[1]!.implementation as unknown[])[1] = { type: 'script', file: 'a.sh', command: 'x' };
    assert.deepEqual(issues(m), [
      '/steps/0/name: must match pattern "^[a-z][a-z0-9_]{0,63}$"',
      '/steps/0/platforms/1: must be one of linux, windows, any',
      '/steps/1/implementation/0/type: must be one of command, script, http',
      '/steps/1/implementation/1/command: is not allowed here',
    ]);
    assert.deepEqual(issues({ ...clone(), steps: [{ ...VALID.steps[0], platforms: [], implementation: [] }] }), [
      '/steps/0/platforms: must NOT have fewer than 1 items',
      '/steps/0/implementation: must NOT have fewer than 1 items',
    ]);
  });

  test('implementation shapes: shells, http method and status, at most 20 items', () => {
    const m = clone();
    m.steps[0]!.implementation = { type: 'command', shell: 'zsh' as never, command: '' };
    m.steps[1]!.implementation = [{ type: 'http', method: 'FETCH' as never, url: 'x', expect_status: [99] }];
    assert.deepEqual(issues(m), [
      '/steps/0/implementation/shell: must be one of sh, bash, powershell, cmd',
      '/steps/0/implementation/command: must NOT have fewer than 1 characters',
      '/steps/1/implementation/0/method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS',
      '/steps/1/implementation/0/expect_status/0: must be >= 100',
    ]);
    const many = clone();
    many.steps[0]!.implementation = Array.from({ length: 21 }, () => ({ type: 'command' as const, command: 'true' }));
    assert.deepEqual(issues(many), ['/steps/0/implementation: must NOT have more than 20 items']);
  });

  test('script args: literal strings, at most 20 of at most 200 characters, on script items only', () => {
    const withArgs = (args: unknown) => {
      const m = clone();
      (m.steps[1]!.implementation as unknown[])[1] = { type: 'script', file: 'scripts/report.py', args };
      return issues(m);
    };
    const at = '/steps/1/implementation/1/args';
    assert.deepEqual(withArgs([]), []);
    assert.deepEqual(withArgs(Array.from({ length: 20 }, () => 'x'.repeat(200))), []);
    assert.deepEqual(withArgs(Array.from({ length: 21 }, () => 'x')), [`${at}: must NOT have more than 20 items`]);
    assert.deepEqual(withArgs(['ok', 'x'.repeat(201)]), [`${at}/1: must NOT have more than 200 characters`]);
    assert.deepEqual(withArgs(['ok', 3]), [`${at}/1: must be string`]);
    assert.deepEqual(withArgs('status'), [`${at}: must be array`]);
    const m = clone();
    m.steps[0]!.implementation = { type: 'command', command: 'true', args: ['x'] } as never;
    assert.deepEqual(issues(m), ['/steps/0/implementation/args: is not allowed here']);
  });

  test('parameters: names, types, defaults and enum values that fit the type', () => {
    const m = clone();
    const parameters = m.steps[0]!.parameters as Record<string, unknown>;
    parameters['bad-name'] = { type: 'string', description: '' };
    parameters.mount = { type: 'text', description: '' };
    assert.deepEqual(issues(m), ['/steps/0/parameters/bad-name: name must match pattern "^[A-Za-z_][A-Za-z0-9_]{0,63}$"', '/steps/0/parameters/mount/type: must be one of string, number, boolean, integer']);
    const d = clone();
    const p = d.steps[0]!.parameters;
    p.top!.default = 2.5;
    p.threshold!.default = '0.9';
    p.unit!.default = 'T';
    p.mount!.enum = ['/srv', 7];
    assert.deepEqual(issues(d), [
      '/steps/0/parameters/mount/enum/1: must be a string, as the parameter\'s type says',
      '/steps/0/parameters/mount/default: must be one of the enum values (/srv, 7)',
      '/steps/0/parameters/unit/default: must be one of the enum values (K, M, G)',
      '/steps/0/parameters/top/default: must be an integer, as the parameter\'s type says',
      '/steps/0/parameters/threshold/default: must be a number, as the parameter\'s type says',
    ]);
    const r = clone();
    r.steps[1]!.parameters = JSON.parse('{"__proto__": {"type": "string", "description": ""}}') as Record<string, never>;
    assert.deepEqual(issues(r), ['/steps/1/parameters/__proto__: "__proto__" is reserved (it names a property every JavaScript object has)']);
    const s = clone();
    s.steps[0]!.parameters.token!.default = 'hunter2';
    assert.deepEqual(issues(s), ['/steps/0/parameters/token/default: a secret parameter cannot have a default']);
  });

  test('duplicate step names name both places', () => {
    const m = clone();
    m.steps[1]!.name = 'disk_usage';
    assert.deepEqual(issues(m), ['/steps/1/name: duplicate step name "disk_usage" (also /steps/0/name)']);
  });

  test('dependencies: library ids and valid semver ranges, not itself', () => {
    assert.deepEqual(issues({ ...clone(), dependencies: { Core: '^1' } }), ['/dependencies/Core: name must match pattern "^[a-z0-9][a-z0-9-]{1,63}$"']);
    assert.deepEqual(issues({ ...clone(), dependencies: { core: 'latest', 'linux-basics': '*' } }), [
      '/dependencies/core: "latest" is not a valid semver range',
      '/dependencies/linux-basics: a library cannot depend on itself',
    ]);
  });

  test('script files must be plain relative paths inside the bundle', () => {
    const withFile = (file: string) => {
      const m = clone();
      (m.steps[1]!.implementation as unknown[])[1] = { type: 'script', file };
      return issues(m);
    };
    const at = '/steps/1/implementation/1/file: must be a plain relative path inside the bundle';
    assert.deepEqual(withFile('../etc/passwd'), [`${at}: path escapes the bundle`]);
    assert.deepEqual(withFile('/etc/passwd'), [`${at}: absolute paths are not allowed`]);
    assert.deepEqual(withFile('./scripts//report.py'), [`${at}: write it as "scripts/report.py"`]);
    assert.deepEqual(withFile('scripts\\report.py'), [`${at}: backslashes are not allowed in paths`]);
  });

  test('the error message carries the first pointer; path and issues are structured', () => {
    assert.throws(() => checkManifest({ ...clone(), id: 'X', version: '1' }), (e: BundleError) => {
      assert.equal(e.message, 'manifest.json /id: must match pattern "^[a-z0-9][a-z0-9-]{1,63}$" (and 1 more problem)');
      assert.equal(e.path, '/id');
      assert.equal(e.issues.length, 2);
      return true;
    });
  });
});

describe('semver helpers', () => {
  test('compareVersions orders by semver precedence, ignoring build metadata', () => {
    assert.equal(compareVersions('1.2.3', '1.10.0'), -1);
    assert.equal(compareVersions('2.0.0', '2.0.0-rc.1'), 1);
    assert.equal(compareVersions('1.0.0+a', '1.0.0+b'), 0);
    assert.deepEqual(['1.10.0', '1.2.0', '1.2.0-alpha'].sort(compareVersions), ['1.2.0-alpha', '1.2.0', '1.10.0']);
  });

  test('satisfies and isValidRange follow npm ranges', () => {
    assert.ok(satisfies('1.4.0', '^1.2.0'));
    assert.ok(!satisfies('2.0.0', '^1.2.0'));
    assert.ok(!satisfies('1.3.0-beta.1', '^1.2.0'));
    assert.ok(satisfies('1.5.0', '>=1.2 <2'));
    assert.ok(isValidRange('~1.2') && isValidRange('1.x') && isValidRange('*'));
    assert.ok(!isValidRange('latest'));
  });
});
