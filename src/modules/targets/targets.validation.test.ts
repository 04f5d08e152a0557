import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { unique } from '../../../test/app.ts';
import { assertError } from '../../../test/assertions.ts';
import { type Target, targetsFixture } from './targets.fixtures.ts';

describe('targets', () => {
  const { setup, close, ctx, creds, post, put, get, create } = targetsFixture();
  before(setup);
  after(close);

  describe('validation', () => {
    const base = () => ({ name: unique('v-'), host: '10.1.1.1', os_type: 'linux', protocol: 'ssh' });

    test('host must be an IPv4/IPv6 address or a DNS name', async () => {
      for (const host of ['not a host', 'bad_host!', '-leading.example.com', 'a..b', 'http://example.com', `${'a'.repeat(64)}.example.com`, '[10.0.0.1', '1.2.3.4:22']) {
        assertError(await post({ ...base(), host }), 400, 'validation_error', 'host');
      }
      assertError(await post({ ...base(), host: '' }), 400, 'validation_error', 'host');
    });

    test('a dotted quad that is not an IPv4 address is not accepted as a host', async () => {
      // RFC 1123 §2.1: a host name never has the dotted-decimal form; 10.0.0.256 is a typo, not a name.
      assertError(await post({ ...base(), host: '10.0.0.256' }), 400, 'validation_error', 'host');
    });

    test('IPv4, DNS names, IPv6 and bracketed IPv6 are accepted (brackets dropped)', async () => {
      assert.equal((await create({ host: '8.8.4.4' })).host, '8.8.4.4');
      assert.equal((await create({ host: 'db-01.internal.example.org' })).host, 'db-01.internal.example.org');
      assert.equal((await create({ host: 'localhost' })).host, 'localhost');
      assert.equal((await create({ host: '2001:db8::10' })).host, '2001:db8::10');
      assert.equal((await create({ host: '::1' })).host, '::1');
      assert.equal((await create({ host: '[2001:db8::20]' })).host, '2001:db8::20');
      const target = await create();
      const res = await put(target.id, { host: '[fe80::1]' });
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json().host, 'fe80::1');
      assertError(await put(target.id, { host: 'no spaces allowed' }), 400, 'validation_error', 'host');
    });

    test('port must be 1-65535 and an integer', async () => {
      for (const port of [0, 65536, -1, 22.5, '22x']) {
        assertError(await post({ ...base(), port }), 400, 'validation_error', 'port');
      }
      assert.equal((await create({ port: 1 })).port, 1);
      assert.equal((await create({ port: 65535 })).port, 65535);
      const target = await create();
      assertError(await put(target.id, { port: 70000 }), 400, 'validation_error', 'port');
    });

    test('default ports follow the protocol and use_tls', async () => {
      assert.equal((await create({ protocol: 'ssh' })).port, 22);
      assert.equal((await create({ protocol: 'winrm', os_type: 'windows' })).port, 5985);
      assert.equal((await create({ protocol: 'winrm', os_type: 'windows', use_tls: false })).port, 5985);
      assert.equal((await create({ protocol: 'winrm', os_type: 'windows', use_tls: true })).port, 5986);
      assert.equal((await create({ protocol: 'http', os_type: 'network' })).port, 80);
      assert.equal((await create({ protocol: 'http', os_type: 'network', use_tls: true })).port, 443);
      assert.equal((await create({ protocol: 'http', use_tls: true, port: 8443 })).port, 8443);
    });

    test('use_tls on ssh is a 400 naming use_tls (create and update)', async () => {
      assertError(await post({ ...base(), use_tls: true }), 400, 'validation_error', 'use_tls');
      const target = await create();
      assertError(await put(target.id, { use_tls: true }), 400, 'validation_error', 'use_tls');
      const winrm = await create({ protocol: 'winrm', use_tls: true });
      assertError(await put(winrm.id, { protocol: 'ssh', use_tls: true }), 400, 'validation_error', 'use_tls');
      assert.equal((await create({ use_tls: false })).use_tls, false);
    });

    test('os_type and protocol are lower-case enums', async () => {
      for (const os_type of ['linux', 'windows', 'unix', 'macos', 'network', 'other']) {
        assert.equal((await create({ os_type })).os_type, os_type);
      }
      for (const os_type of ['Linux', 'solaris', '', 7]) {
        assertError(await post({ ...base(), os_type }), 400, 'validation_error', 'os_type');
      }
      for (const protocol of ['SSH', 'telnet', 'https', '']) {
        assertError(await post({ ...base(), protocol }), 400, 'validation_error', 'protocol');
      }
      const target = await create();
      assertError(await put(target.id, { os_type: 'beos' }), 400, 'validation_error', 'os_type');
      assertError(await put(target.id, { protocol: 'rdp' }), 400, 'validation_error', 'protocol');
    });

    test('required fields, bad types, bad tags and unknown fields are 400s naming the field', async () => {
      for (const field of ['name', 'host', 'os_type', 'protocol']) {
        const body: Record<string, unknown> = base();
        delete body[field];
        assertError(await post(body), 400, 'validation_error', field);
      }
      assertError(await post({ ...base(), name: '' }), 400, 'validation_error', 'name');
      assertError(await post({ ...base(), name: 'x'.repeat(101) }), 400, 'validation_error', 'name');
      assertError(await post({ ...base(), os: 'linux' }), 400, 'validation_error', 'os');
      assertError(await post({ ...base(), use_tls: 'yes' }), 400, 'validation_error', 'use_tls');
      assertError(await post({ ...base(), tags: 'prod' }), 400, 'validation_error', 'tags');
      assertError(await post({ ...base(), tags: ['has space'] }), 400, 'validation_error', 'tags.0');
      assertError(await post({ ...base(), tags: ['dup', 'dup'] }), 400, 'validation_error', 'tags');
      assertError(await post({ ...base(), description: 'd'.repeat(1001) }), 400, 'validation_error', 'description');
      assertError(await post({ ...base(), credential_id: 'one' }), 400, 'validation_error', 'credential_id');
      const target = await create();
      assertError(await put(target.id, { hostname: 'x' }), 400, 'validation_error', 'hostname');
    });

    test('names are unique case-insensitively: 409 naming name on create and rename', async () => {
      const name = unique('Web-');
      await create({ name });
      const dup = await post({ ...base(), name: name.toLowerCase() });
      assertError(dup, 409, 'conflict', 'name');
      assert.deepEqual(dup.json().error.details, { field: 'name' });
      assertError(await post({ ...base(), name: name.toUpperCase() }), 409, 'conflict', 'name');
      const other = await create();
      assertError(await put(other.id, { name: name.toUpperCase() }), 409, 'conflict', 'name');
      // Renaming a target to a new case of its own name is fine.
      const self = await put(other.id, { name: other.name.toUpperCase() });
      assert.equal(self.statusCode, 200, self.body);
      assert.equal(self.json().name, other.name.toUpperCase());
    });

    test('credential_id must exist: 400 naming credential_id', async () => {
      assertError(await post({ ...base(), credential_id: 999_999 }), 400, 'validation_error', 'credential_id');
      const target = await create();
      assertError(await put(target.id, { credential_id: 999_999 }), 400, 'validation_error', 'credential_id');
      assert.equal((await get(target.id)).json().credential_id, null);
    });

    test('credential type must fit the protocol', async () => {
      const fits: Array<[string, keyof typeof creds]> = [
        ['ssh', 'ssh'],
        ['ssh', 'password'],
        ['winrm', 'winrm'],
        ['winrm', 'password'],
        ['http', 'api_token'],
        ['http', 'password'],
      ];
      for (const [protocol, type] of fits) {
        const res = await post({ ...base(), protocol, credential_id: creds[type] });
        assert.equal(res.statusCode, 200, `${protocol} with ${type}: ${res.body}`);
        assert.equal(res.json().credential_id, creds[type]);
      }
      const misfits: Array<[string, keyof typeof creds]> = [
        ['ssh', 'winrm'],
        ['ssh', 'api_token'],
        ['winrm', 'ssh'],
        ['winrm', 'api_token'],
        ['http', 'ssh'],
        ['http', 'winrm'],
      ];
      for (const [protocol, type] of misfits) {
        assertError(await post({ ...base(), protocol, credential_id: creds[type] }), 400, 'validation_error', 'credential_id');
      }
    });

    test('a winrm target whose credential uses Basic needs use_tls (Basic over HTTP sends the password in clear): 400 naming the field', async () => {
      const res = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('basic-'), type: 'winrm', username: 'u', password: 'p', auth: 'basic' } });
      assert.equal(res.statusCode, 200, res.body);
      const basic = res.json().id as number;
      const windows = { ...base(), os_type: 'windows', protocol: 'winrm' };
      const refused = await post({ ...windows, credential_id: basic });
      assertError(refused, 400, 'validation_error', 'credential_id');
      assert.match(refused.json().error.message, /Basic .*plain HTTP.*use_tls \(HTTPS, port 5986\) or use an NTLM credential/);
      const overTls = await post({ ...windows, use_tls: true, credential_id: basic });
      assert.equal(overTls.statusCode, 200, overTls.body);
      const target = overTls.json() as Target;
      assertError(await put(target.id, { use_tls: false }), 400, 'validation_error', 'use_tls');
      assert.equal((await get(target.id)).json().use_tls, true, 'the refused update changed nothing');
      const ntlm = await create({ os_type: 'windows', protocol: 'winrm', credential_id: creds.winrm });
      assertError(await put(ntlm.id, { credential_id: basic }), 400, 'validation_error', 'credential_id');
      assert.equal((await put(ntlm.id, { credential_id: basic, use_tls: true })).statusCode, 200);
    });

    test('a credential used by a winrm target over plain HTTP cannot switch to Basic: 400 naming auth; over HTTPS it can', async () => {
      const made = await ctx.request({ method: 'POST', url: '/credentials', token: ctx.adminToken, payload: { name: unique('ntlm-'), type: 'winrm', username: 'u', password: 'p', auth: 'ntlm' } });
      const credential = made.json().id as number;
      const target = await create({ os_type: 'windows', protocol: 'winrm', credential_id: credential });
      const toBasic = () => ctx.request({ method: 'PUT', url: `/credentials/${credential}`, token: ctx.adminToken, payload: { auth: 'basic' } });
      const refused = await toBasic();
      assertError(refused, 400, 'validation_error', 'auth');
      assert.match(refused.json().error.message, new RegExp(`winrm target\\(s\\) ${target.id} use this credential without use_tls`));
      assert.equal((await ctx.deps.credentials.resolve(credential)).auth, 'ntlm', 'the refused update changed nothing');
      assert.equal((await put(target.id, { use_tls: true })).statusCode, 200);
      assert.equal((await toBasic()).statusCode, 200);
    });

    test('an update that makes the credential unfit (protocol change) is refused and changes nothing', async () => {
      const target = await create({ credential_id: creds.ssh });
      assertError(await put(target.id, { protocol: 'http' }), 400, 'validation_error', 'credential_id');
      const after = (await get(target.id)).json() as Target;
      assert.equal(after.protocol, 'ssh');
      assert.equal(after.port, 22);
      const both = await put(target.id, { protocol: 'http', credential_id: creds.api_token });
      assert.equal(both.statusCode, 200, both.body);
      assert.equal(both.json().protocol, 'http');
      assert.equal(both.json().credential_id, creds.api_token);
    });
  });
});
