/**
 * Test helpers for the libraries API: multipart uploads, a hand-made tar (for names writeBundle
 * refuses), small libraries of one's own, and catalog bundles fetched through a signed URL.
 */
import { createHash } from 'node:crypto';

import type { TestContext } from '../../../test/app.ts';
import { type LibraryManifest, type LibraryStep, readBundle, writeBundle } from '../../libraries/bundle.ts';

/** A multipart/form-data body with the bundle in field "bundle". */
export function multipart(data: Buffer, name = 'bundle.tar.gz') {
  const boundary = `----oc${Date.now()}`;
  const payload = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="bundle"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    data,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { payload, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } };
}

/** POST /libraries/install with `data` as the uploaded bundle. */
export const uploadBundle = (ctx: TestContext, data: Buffer, query = '', token = ctx.adminToken, name?: string) =>
  ctx.request({ method: 'POST', url: `/libraries/install${query}`, token, ...multipart(data, name) });

/** A tar archive by hand: one entry named `name` (any name, unlike writeBundle). */
export function tarWith(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 100);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) {
    sum += byte;
  }
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const body = Buffer.concat([content, Buffer.alloc((512 - (content.length % 512)) % 512)]);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

/** A step of one's own; `implementation` and `platforms` are what tests vary. */
export const ownStep = (name: string, implementation: LibraryStep['implementation'], platforms: LibraryStep['platforms'] = ['linux'], parameters: LibraryStep['parameters'] = {}): LibraryStep => ({
  name,
  display_name: name,
  description: `test step ${name}`,
  category: 'test',
  platforms,
  parameters,
  implementation,
});

/** A library of one's own, as a .tar.gz bundle. */
export function ownLibrary(id: string, version: string, steps: LibraryStep[], files: Record<string, string> = {}, extra: Partial<LibraryManifest> = {}): Promise<Buffer> {
  const manifest: LibraryManifest = { id, name: `Test ${id}`, version, description: 'made by a test', author: 'tests', license: 'MIT', steps, ...extra };
  return writeBundle(manifest, new Map(Object.entries(files).map(([path, text]) => [path, Buffer.from(text)])));
}

/** The catalog bundle of `id` as served through a signed download URL: its bytes, parsed. */
export async function downloadCatalog(ctx: TestContext, id: string) {
  const res = await ctx.request({ method: 'POST', url: `/catalog/${id}/download`, token: ctx.adminToken });
  if (res.statusCode !== 200) {
    throw new Error(`download URL of ${id}: ${res.statusCode} ${res.body}`);
  }
  const link = new URL(String(res.json().download_url));
  const got = await ctx.request({ method: 'GET', url: link.pathname + link.search });
  if (got.statusCode !== 200) {
    throw new Error(`download of ${id}: ${got.statusCode} ${got.body}`);
  }
  const bytes = got.rawPayload;
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex'), bundle: await readBundle(bytes) };
}
