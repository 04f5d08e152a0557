import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';

import { zipSync, type Zippable } from 'fflate';

import { BundleError, type LibraryManifest, MAX_BUNDLE_BYTES, readBundle, writeBundle } from './bundle.ts';

const MANIFEST: LibraryManifest = {
  id: 'demo-lib',
  name: 'Demo',
  version: '1.2.0',
  description: 'Steps for tests',
  author: 'OpsConductor',
  license: 'Apache-2.0',
  steps: [
    {
      name: 'restart_service',
      display_name: 'Restart a service',
      description: 'systemctl restart',
      category: 'services',
      platforms: ['linux'],
      parameters: { service: { type: 'string', required: true, description: 'Unit name' } },
      implementation: [
        { type: 'command', shell: 'bash', command: 'systemctl restart {{ params.service }}' },
        { type: 'script', shell: 'bash', file: 'scripts/check.sh' },
      ],
    },
  ],
};
const SCRIPT = Buffer.from('#!/bin/sh\nsystemctl is-active "$1"\n');
const manifestBytes = (m: unknown = MANIFEST) => Buffer.from(JSON.stringify(m));

/** One hand-made ustar header (writeBundle cannot produce links, traversal or duplicates). */
function tarHeader(name: string, size: number, type = '0', linkname = ''): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 100, 'utf8');
  block.write('0000644\0', 100);
  block.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  block.write('00000000000\0', 136);
  block.write(type, 156);
  block.write(linkname, 157, 100);
  block.write('ustar\u000000', 257, 'latin1');
  block.fill(0x20, 148, 156);
  block.write(`${block.reduce((n, b) => n + b, 0).toString(8).padStart(6, '0')}\0 `, 148);
  return block;
}

type RawEntry = { name: string; data?: Buffer | string; type?: string; linkname?: string };

/** A .tar.gz of raw entries, exactly as given. */
function tarGz(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data = '', type = '0', linkname } of entries) {
    const body = Buffer.from(data);
    parts.push(tarHeader(name, body.length, type, linkname), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  return gzipSync(Buffer.concat([...parts, Buffer.alloc(1024)]));
}

const validEntries = (prefix = ''): RawEntry[] => [
  { name: `${prefix}manifest.json`, data: manifestBytes() },
  { name: `${prefix}scripts/check.sh`, data: SCRIPT },
];

/** Asserts that reading `data` fails with exactly `message` (and `path`, when given). */
async function refused(data: Buffer | Promise<Buffer>, message: string | RegExp, path?: string, options?: { maxBytes?: number }) {
  await assert.rejects(readBundle(await data, options), (e: unknown) => {
    assert.ok(e instanceof BundleError, `expected a BundleError, got ${String(e)}`);
    if (typeof message === 'string') {
      assert.equal(e.message, message);
    } else {
      assert.match(e.message, message);
    }
    if (path !== undefined) {
      assert.equal(e.path, path);
    }
    return true;
  });
}

describe('readBundle: valid bundles', () => {
  test('a .tar.gz from writeBundle reads back whole; sha256 and bytes describe the input', async () => {
    const data = await writeBundle(MANIFEST, new Map([['scripts/check.sh', SCRIPT]]));
    const bundle = await readBundle(data);
    assert.deepEqual(bundle.manifest, MANIFEST);
    assert.deepEqual([...bundle.files], [['scripts/check.sh', SCRIPT]]);
    assert.equal(bundle.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(bundle.bytes, data.length);
  });

  test('writeBundle is deterministic, so a catalog library keeps its SHA-256', async () => {
    const a = await writeBundle(MANIFEST, new Map([['scripts/check.sh', SCRIPT], ['README.md', Buffer.from('x')]]));
    const b = await writeBundle(MANIFEST, new Map([['README.md', Buffer.from('x')], ['scripts/check.sh', SCRIPT]]));
    assert.ok(a.equals(b));
  });

  test('paths longer than the ustar name field survive writeBundle (pax) and a GNU long-name entry', async () => {
    const long = `scripts/${'d'.repeat(120)}/check.sh`;
    const manifest = { ...MANIFEST, steps: [{ ...MANIFEST.steps[0]!, implementation: { type: 'script' as const, file: long } }] };
    const written = await readBundle(await writeBundle(manifest, new Map([[long, SCRIPT]])));
    assert.deepEqual([...written.files.keys()], [long]);
    const gnu = tarGz([{ name: 'manifest.json', data: manifestBytes(manifest) }, { name: '././@LongLink', type: 'L', data: `${long}\0` }, { name: long.slice(0, 100), data: SCRIPT }]);
    assert.deepEqual([...(await readBundle(gnu)).files.keys()], [long]);
  });

  test('a zip (with directory entries) reads the same', async () => {
    const zip = Buffer.from(zipSync({ 'manifest.json': manifestBytes(), 'scripts/': new Uint8Array(0), 'scripts/check.sh': SCRIPT }));
    const bundle = await readBundle(zip);
    assert.deepEqual(bundle.manifest, MANIFEST);
    assert.deepEqual([...bundle.files], [['scripts/check.sh', SCRIPT]]);
    assert.equal(bundle.sha256, createHash('sha256').update(zip).digest('hex'));
  });

  test('one top-level directory is stripped (tar with ./ and directory entries; zip with __MACOSX)', async () => {
    const tar = tarGz([{ name: './', type: '5' }, { name: './demo-1.2.0/', type: '5' }, ...validEntries('./demo-1.2.0/')]);
    assert.deepEqual([...(await readBundle(tar)).files.keys()], ['scripts/check.sh']);
    const zip: Zippable = { 'demo/manifest.json': manifestBytes(), 'demo/scripts/check.sh': SCRIPT, '__MACOSX/demo/._manifest.json': new Uint8Array(4) };
    assert.deepEqual([...(await readBundle(Buffer.from(zipSync(zip)))).files.keys()], ['scripts/check.sh']);
  });
});

describe('readBundle: unsafe archives', () => {
  const traversal: Array<[string, string]> = [
    ['../x', 'path escapes the bundle'],
    ['/abs', 'absolute paths are not allowed'],
    ['a/../../b', 'path escapes the bundle'],
    ['a/../b', '".." segments are not allowed in paths'],
    ['scripts\\..\\x', 'backslashes are not allowed in paths'],
    ['C:/x', 'drive letters are not allowed in paths'],
  ];
  for (const [name, problem] of traversal) {
    test(`entry ${JSON.stringify(name)} is refused in tar and zip`, async () => {
      const message = `archive entry ${JSON.stringify(name)}: ${problem}`;
      await refused(tarGz([...validEntries(), { name, data: 'x' }]), message, name);
      await refused(Buffer.from(zipSync({ 'manifest.json': manifestBytes(), 'scripts/check.sh': SCRIPT, [name]: Buffer.from('x') })), message, name);
    });
  }

  test('names from pax and GNU long-name headers are checked like any other', async () => {
    const pax = '23 path=../../etc/cron\n';
    await refused(tarGz([...validEntries(), { name: 'PaxHeader', type: 'x', data: pax }, { name: 'harmless', data: 'x' }]), 'archive entry "../../etc/cron": path escapes the bundle');
    await refused(tarGz([...validEntries(), { name: '././@LongLink', type: 'L', data: '/etc/cron\0' }, { name: 'harmless', data: 'x' }]), 'archive entry "/etc/cron": absolute paths are not allowed');
  });

  test('symbolic links, hard links, devices and FIFOs are refused in tar, wherever they point', async () => {
    await refused(tarGz([...validEntries(), { name: 'passwd', type: '2', linkname: '/etc/passwd' }]), 'archive entry "passwd": symbolic links are not allowed');
    await refused(tarGz([...validEntries(), { name: 'inside', type: '2', linkname: 'manifest.json' }]), 'archive entry "inside": symbolic links are not allowed');
    await refused(tarGz([...validEntries(), { name: 'hard', type: '1', linkname: 'manifest.json' }]), 'archive entry "hard": hard links are not allowed');
    await refused(tarGz([...validEntries(), { name: 'null', type: '3' }]), 'archive entry "null": device files are not allowed');
    await refused(tarGz([...validEntries(), { name: 'pipe', type: '6' }]), 'archive entry "pipe": FIFOs are not allowed');
  });

  test('a zip entry whose Unix mode is a symbolic link is refused', async () => {
    const zip = zipSync({ 'manifest.json': manifestBytes(), 'scripts/check.sh': SCRIPT, link: [Buffer.from('/etc/passwd'), { os: 3, attrs: 0o120777 << 16 }] });
    await refused(Buffer.from(zip), 'archive entry "link": symbolic links are not allowed', 'link');
  });

  test('duplicate paths are refused, including spellings of the same path', async () => {
    await refused(tarGz([...validEntries(), { name: 'scripts/check.sh', data: 'evil' }]), 'archive entry "scripts/check.sh": duplicate path');
    await refused(tarGz([...validEntries(), { name: './scripts//check.sh', data: 'evil' }]), 'archive entry "./scripts//check.sh": duplicate path');
    await refused(tarGz([...validEntries(), { name: 'scripts/check.sh/x', data: 'x' }]), 'archive entry "scripts/check.sh/x": "scripts/check.sh" is a file, not a directory');
  });

  test('more than 1,000 entries are refused', async () => {
    const many: RawEntry[] = Array.from({ length: 1000 }, (_, i) => ({ name: `f/${i}` }));
    await refused(tarGz([...validEntries(), ...many]), 'archive has more than 1000 entries');
    await refused(Buffer.from(zipSync(Object.fromEntries([...many, ...validEntries()].map((e) => [e.name, Buffer.from(e.data ?? '')])))), 'archive has more than 1000 entries');
  });
});

describe('readBundle: size limits', () => {
  const huge = Buffer.alloc(11 * 1024 * 1024);

  test('a small .tar.gz that expands past 10 MiB is refused', async () => {
    const data = tarGz([...validEntries(), { name: 'zeros.bin', data: huge }]);
    assert.ok(data.length < 64 * 1024);
    await refused(data, 'bundle is larger than 10 MiB uncompressed');
    // Far past the limit: gunzip itself stops (its cap leaves room only for tar headers).
    await refused(tarGz([...validEntries(), { name: 'zeros.bin', data: Buffer.alloc(40 * 1024 * 1024) }]), 'bundle is larger than 10 MiB uncompressed');
  });

  test('a small zip that expands past 10 MiB is refused, even when its directory understates the size', async () => {
    const zip = Buffer.from(zipSync({ 'manifest.json': manifestBytes(), 'scripts/check.sh': SCRIPT, 'zeros.bin': huge }));
    assert.ok(zip.length < 64 * 1024);
    await refused(zip, 'bundle is larger than 10 MiB uncompressed');
    // Claim 1 byte in the central directory: inflating must still stop at the limit.
    const central = zip.lastIndexOf(Buffer.from('PK\x01\x02', 'latin1'));
    assert.equal(zip.toString('latin1', central + 46, central + 46 + 9), 'zeros.bin');
    zip.writeUInt32LE(1, central + 24);
    await refused(zip, 'bundle is larger than 10 MiB uncompressed');
  });

  test('the limit covers the input and can be lowered', async () => {
    const data = await writeBundle(MANIFEST, new Map([['scripts/check.sh', SCRIPT]]));
    await refused(data, `bundle is ${data.length} bytes; the limit is 100 bytes`, undefined, { maxBytes: 100 });
    await refused(tarGz([...validEntries(), { name: 'big', data: Buffer.alloc(5000) }]), 'bundle is larger than 4096 bytes uncompressed', undefined, { maxBytes: 4096 });
    assert.equal(MAX_BUNDLE_BYTES, 10 * 1024 * 1024);
  });
});

describe('readBundle: not a bundle', () => {
  test('other formats, gzip that is not tar, truncated archives', async () => {
    const expected = 'not a bundle: expected a .tar.gz or .zip archive';
    await refused(Buffer.from('{"id": "x"}'), expected);
    await refused(Buffer.alloc(0), expected);
    await refused(Buffer.concat([tarHeader('manifest.json', 2), Buffer.from('{}')]), expected); // plain tar
    await refused(gzipSync('just some text that is not a tar archive at all'.repeat(20)), 'the gzip data is not a tar archive');
    const good = await writeBundle(MANIFEST, new Map([['scripts/check.sh', SCRIPT]]));
    await refused(good.subarray(0, good.length - 30), /^not a valid gzip file \(/);
    const zip = Buffer.from(zipSync({ 'manifest.json': manifestBytes() }));
    await refused(zip.subarray(0, zip.length - 10), 'not a valid zip archive (no end of central directory)');
  });

  test('manifest.json missing, at the wrong depth, or not JSON', async () => {
    const missing = /^manifest\.json is missing/;
    await refused(tarGz([{ name: 'scripts/check.sh', data: SCRIPT }]), missing, 'manifest.json');
    await refused(tarGz([...validEntries('a/'), { name: 'b/readme', data: 'x' }]), missing);
    await refused(tarGz(validEntries('a/b/')), missing);
    await refused(Buffer.from(zipSync({})), 'manifest.json is missing (the zip archive is empty)');
    await refused(tarGz([{ name: 'manifest.json', data: '{"id": ' }]), /^manifest\.json: not valid JSON \(/, 'manifest.json');
  });
});

describe('readBundle: manifest errors name the JSON pointer', () => {
  const withStep = (step: Record<string, unknown>, index = 0) => {
    const steps: unknown[] = [MANIFEST.steps[0], { ...MANIFEST.steps[0], name: 'second' }];
    steps[index] = { ...(steps[index] as object), ...step };
    return tarGz([{ name: 'manifest.json', data: manifestBytes({ ...MANIFEST, steps }) }, { name: 'scripts/check.sh', data: SCRIPT }]);
  };

  test('bad step name, unknown implementation type, bad version, duplicate step names', async () => {
    await refused(withStep({ name: 'Restart' }), 'manifest.json /steps/0/name: must match pattern "^[a-z][a-z0-9_]{0,63}$"', '/steps/0/name');
    await refused(withStep({ implementation: { type: 'ftp', url: 'x' } }, 1), 'manifest.json /steps/1/implementation/type: must be one of command, script, http', '/steps/1/implementation/type');
    await refused(withStep({ name: 'restart_service' }, 1), 'manifest.json /steps/1/name: duplicate step name "restart_service" (also /steps/0/name)', '/steps/1/name');
    const badVersion = tarGz([{ name: 'manifest.json', data: manifestBytes({ ...MANIFEST, version: '1.2' }) }, { name: 'scripts/check.sh', data: SCRIPT }]);
    await refused(badVersion, /^manifest\.json \/version: must be a semantic version/, '/version');
  });

  test('a script file missing from the archive', async () => {
    await refused(tarGz([{ name: 'manifest.json', data: manifestBytes() }]), 'manifest.json /steps/0/implementation/1/file: "scripts/check.sh" is not in the bundle', '/steps/0/implementation/1/file');
  });

  test('every problem is listed in issues; the message names the first', async () => {
    await assert.rejects(readBundle(withStep({ name: 'X', platforms: [], extra: true })), (e: BundleError) => {
      assert.equal(e.message, 'manifest.json /steps/0/extra: is not allowed here (and 2 more problems)');
      assert.deepEqual(e.issues.map((i) => i.path).sort(), ['/steps/0/extra', '/steps/0/name', '/steps/0/platforms']);
      return true;
    });
  });
});

describe('writeBundle', () => {
  test('refuses what readBundle would refuse', async () => {
    await assert.rejects(writeBundle(MANIFEST, new Map([['../check.sh', SCRIPT]])), { message: 'archive entry "../check.sh": path escapes the bundle' });
    await assert.rejects(writeBundle(MANIFEST, new Map()), { message: 'manifest.json /steps/0/implementation/1/file: "scripts/check.sh" is not in the bundle' });
    await assert.rejects(writeBundle(MANIFEST, new Map([['scripts/check.sh', SCRIPT], ['manifest.json', Buffer.from('{}')]])), BundleError);
    await assert.rejects(writeBundle({ ...MANIFEST, id: 'X' }, new Map([['scripts/check.sh', SCRIPT]])), { path: '/id' });
  });
});
