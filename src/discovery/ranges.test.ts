/**
 * Range parsing and the allow-list. Non-loopback ranges here are only parsed (to prove they are
 * refused, or accepted when an operator allows them); nothing is sent to them. Host names other than
 * `localhost` (answered from /etc/hosts) go through a fake lookup, so no DNS query leaves the machine.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { compareAddresses, DEFAULT_ALLOW, DEFAULT_MAX_ADDRESSES, type LookupAll, parseAllowList, parseNetworkRange, type RangeLimits, resolveHostnames } from './ranges.ts';

const LOOPBACK: RangeLimits = { allow: DEFAULT_ALLOW, maxAddresses: DEFAULT_MAX_ADDRESSES };
const OPERATOR: RangeLimits = { allow: ['10.0.0.0/8', '192.168.0.0/16'], maxAddresses: DEFAULT_MAX_ADDRESSES };
const DOCS_V6: RangeLimits = { allow: ['2001:db8::/32'], maxAddresses: DEFAULT_MAX_ADDRESSES };

const parse = (text: string, limits: RangeLimits = LOOPBACK) => parseNetworkRange(text, limits);
/** The addresses of a range that must parse cleanly. */
const addresses = (text: string, limits: RangeLimits = LOOPBACK) => {
  const parsed = parse(text, limits);
  assert.deepEqual(parsed.errors, [], text);
  return parsed.addresses;
};
/** The parts named by the errors of `text`. */
const refused = (text: string, limits: RangeLimits = LOOPBACK) => parse(text, limits).errors.map((e) => e.part);

describe('parseNetworkRange: syntax', () => {
  test('single IPv4 and IPv6 addresses, CIDR blocks, last-octet and full ranges and host names, mixed and spaced', () => {
    const parsed = parse(' 127.0.0.1 , ::1,127.0.1.0/30, 127.0.2.5-7,127.0.2.254-127.0.3.1, localhost,Build-01.lab ');
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(parsed.addresses, ['127.0.0.1', '127.0.1.1', '127.0.1.2', '127.0.2.5', '127.0.2.6', '127.0.2.7', '127.0.2.254', '127.0.2.255', '127.0.3.0', '127.0.3.1', '::1']);
    assert.deepEqual(parsed.hostnames, ['build-01.lab', 'localhost']);
    assert.equal(parsed.count, 13);
  });

  test('a range of one address, a last octet equal to the start, and spaces around the dash', () => {
    assert.deepEqual(addresses('127.0.0.9-9, 127.0.0.4-127.0.0.4, 127.0.1.1 - 2, 127.0.2.1 -127.0.2.2'), ['127.0.0.4', '127.0.0.9', '127.0.1.1', '127.0.1.2', '127.0.2.1', '127.0.2.2']);
  });

  test('a block written with host bits set is the block that holds it (as nmap reads it)', () => {
    assert.deepEqual(addresses('127.0.0.5/30'), ['127.0.0.5', '127.0.0.6']);
  });

  test('host names: RFC 1123 labels, lower-cased; hyphens inside labels, digits anywhere but a wholly numeric last label', () => {
    assert.deepEqual(parse('LOCALHOST, web-01, 3com.example, a.b-c.d9').hostnames, ['3com.example', 'a.b-c.d9', 'localhost', 'web-01']);
    assert.deepEqual(refused(`under_score, -lead, trail-, a..b, x.example., ${'a'.repeat(64)}.example, 127.0.0, bad!name`), ['under_score', '-lead', 'trail-', 'a..b', 'x.example.', `${'a'.repeat(64)}.example`, '127.0.0', 'bad!name']);
  });
});

describe('parseNetworkRange: dedupe and order', () => {
  test('distinct, numeric (not textual) order, IPv4 before IPv6, host names after and sorted', () => {
    const parsed = parse('localhost, ::1, 127.0.0.10, 127.0.0.9, 127.0.0.1-3, 127.0.0.2, 0:0:0:0:0:0:0:1, ::1/128, Localhost, 127.0.0.0/31');
    assert.deepEqual(parsed.errors, []);
    assert.deepEqual(parsed.addresses, ['127.0.0.0', '127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.9', '127.0.0.10', '::1']);
    assert.deepEqual(parsed.hostnames, ['localhost']);
    assert.equal(parsed.count, 8);
  });

  test('overlapping and adjacent parts are counted once', () => {
    const parsed = parse('127.0.0.1-100, 127.0.0.50-150, 127.0.0.0/25, 127.0.0.151-160');
    assert.equal(parsed.count, 160);
    assert.equal(parsed.addresses.length, 160);
    assert.equal(new Set(parsed.addresses).size, 160);
  });

  test('compareAddresses orders literals numerically by family, then anything else alphabetically', () => {
    const sorted = ['web', '::1', '127.0.0.10', '::0.0.0.2', '127.0.0.9', 'alpha', '9.0.0.1'].sort(compareAddresses);
    assert.deepEqual(sorted, ['9.0.0.1', '127.0.0.9', '127.0.0.10', '::1', '::0.0.0.2', 'alpha', 'web']);
  });
});

describe('parseNetworkRange: CIDR host rule', () => {
  test('/0-/30 leave out the network and broadcast addresses; /31 and /32 keep all', () => {
    assert.deepEqual(addresses('127.0.0.0/29'), ['127.0.0.1', '127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']);
    assert.deepEqual(addresses('127.0.0.0/30'), ['127.0.0.1', '127.0.0.2']);
    assert.deepEqual(addresses('127.0.0.0/31'), ['127.0.0.0', '127.0.0.1']);
    assert.deepEqual(addresses('127.0.0.7/32'), ['127.0.0.7']);
    const c24 = addresses('192.168.1.0/24', OPERATOR);
    assert.deepEqual([c24.length, c24[0], c24.at(-1)], [254, '192.168.1.1', '192.168.1.254']);
    assert.equal(parse('127.0.0.0/16').count, 65_534);
  });

  test('IPv6 blocks have no broadcast address: all are kept', () => {
    assert.deepEqual(addresses('2001:db8::/126', DOCS_V6), ['2001:db8::', '2001:db8::1', '2001:db8::2', '2001:db8::3']);
  });
});

describe('parseNetworkRange: IPv6', () => {
  test('::1 and ::1/128 are loopback and allowed by default', () => {
    assert.deepEqual(addresses('::1'), ['::1']);
    assert.deepEqual(addresses('::1/128'), ['::1']);
    assert.deepEqual(refused('::1/127, ::2, ::'), ['::1/127', '::2', '::']);
  });

  test('written back in RFC 5952 form: lower case, the longest zero run compressed, a single zero group not', () => {
    const parsed = addresses('2001:DB8:0:0:1:0:0:1, 2001:db8:0:1:1:1:1:1, 2001:db8:0:0:0::ab, 2001:db8::0.0.1.2', DOCS_V6);
    assert.deepEqual(parsed, ['2001:db8::ab', '2001:db8::102', '2001:db8::1:0:0:1', '2001:db8:0:1:1:1:1:1']);
  });

  test('full IPv6 ranges, across a group boundary', () => {
    assert.deepEqual(addresses('2001:db8::fffe-2001:db8::1:1', DOCS_V6), ['2001:db8::fffe', '2001:db8::ffff', '2001:db8::1:0', '2001:db8::1:1']);
  });

  test('zone indices, IPv4-mapped addresses, last-group ranges and mixed families are refused', () => {
    const parsed = parse('::1%lo, ::ffff:127.0.0.1, ::1-5, ::1-127.0.0.1, 127.0.0.1-::1');
    assert.deepEqual(parsed.addresses, []);
    assert.deepEqual(parsed.errors.map((e) => e.part), ['::1%lo', '::ffff:127.0.0.1', '::1-5', '::1-127.0.0.1', '127.0.0.1-::1']);
    assert.match(parsed.errors[1]?.message ?? '', /write 127\.0\.0\.1/);
  });
});

describe('parseNetworkRange: the allow-list', () => {
  test('with the default (loopback) list, 10.0.0.0/8 and 192.168.1.0/24 are refused, each error naming its part; loopback parts still parse', () => {
    const parsed = parse('127.0.0.1, 10.0.0.0/8, 192.168.1.0/24, 127.0.0.2');
    assert.deepEqual(parsed.errors, [
      { part: '10.0.0.0/8', message: 'outside the allowed networks (127.0.0.0/8, ::1/128)' },
      { part: '192.168.1.0/24', message: 'outside the allowed networks (127.0.0.0/8, ::1/128)' },
    ]);
    assert.deepEqual(parsed.addresses, ['127.0.0.1', '127.0.0.2']);
  });

  test('a part is allowed only if all of it is: ranges and blocks straddling the edge are refused', () => {
    assert.deepEqual(refused('127.255.255.254-128.0.0.1, 126.255.255.255-127.0.0.1, 127.0.0.0/7, 0.0.0.0/0, 8.8.8.8, 2001:db8::1'), [
      '127.255.255.254-128.0.0.1',
      '126.255.255.255-127.0.0.1',
      '127.0.0.0/7',
      '0.0.0.0/0',
      '8.8.8.8',
      '2001:db8::1',
    ]);
  });

  test("an operator's list replaces the default: their networks parse (nothing is sent), loopback and the rest do not", () => {
    const parsed = parse('10.0.0.5-40, 192.168.1.0/24, 10.1.2.3, 172.16.0.1, 127.0.0.1', OPERATOR);
    assert.deepEqual(parsed.errors.map((e) => e.part), ['172.16.0.1', '127.0.0.1']);
    assert.match(parsed.errors[0]?.message ?? '', /outside the allowed networks \(10\.0\.0\.0\/8, 192\.168\.0\.0\/16\)/);
    assert.equal(parsed.count, 36 + 254 + 1);
    assert.deepEqual([parsed.addresses[0], parsed.addresses[35], parsed.addresses[36], parsed.addresses.at(-1)], ['10.0.0.5', '10.0.0.40', '10.1.2.3', '192.168.1.254']);
  });

  test('10.0.0.0/8 is inside the operator list but over the address limit', () => {
    assert.deepEqual(parse('10.0.0.0/8', OPERATOR).errors, [{ part: '10.0.0.0/8', message: '16777214 addresses, more than the limit of 65536' }]);
  });

  test('an empty allow-list refuses every address but still takes host names (their addresses are checked when resolved)', () => {
    const parsed = parse('127.0.0.1, localhost', { allow: [], maxAddresses: 10 });
    assert.deepEqual(parsed.errors, [{ part: '127.0.0.1', message: 'outside the allowed networks (none)' }]);
    assert.deepEqual(parsed.hostnames, ['localhost']);
  });
});

describe('parseNetworkRange: limits', () => {
  const ten: RangeLimits = { allow: DEFAULT_ALLOW, maxAddresses: 10 };

  test('a part larger than the limit is refused on its own, naming its size', () => {
    assert.deepEqual(parse('127.0.0.0/28', ten).errors, [{ part: '127.0.0.0/28', message: '14 addresses, more than the limit of 10' }]);
    assert.deepEqual(addresses('127.0.0.0/28', { allow: DEFAULT_ALLOW, maxAddresses: 14 }).length, 14);
  });

  test('the part that takes the distinct total past the limit is refused; overlaps do not count twice; later small parts still fit', () => {
    const parsed = parse('127.0.0.1-8, 127.0.0.2-7, 127.0.0.5-12, 127.0.0.100, localhost, other.example', ten);
    assert.deepEqual(parsed.errors, [
      { part: '127.0.0.5-12', message: 'would bring the job to 12 addresses, more than the limit of 10' },
      { part: 'other.example', message: 'would bring the job to 11 addresses, more than the limit of 10' },
    ]);
    assert.equal(parsed.count, 10);
    assert.deepEqual(parsed.hostnames, ['localhost']);
  });

  test('the default limit is 65,536: a /16 of loopback fits, a /15 does not', () => {
    assert.equal(DEFAULT_MAX_ADDRESSES, 65_536);
    assert.equal(parse('127.0.0.0/16').addresses.length, 65_534);
    assert.deepEqual(refused('127.0.0.0/15'), ['127.0.0.0/15']);
  });

  test('huge parts are refused without being expanded (this would not finish otherwise)', () => {
    const everything: RangeLimits = { allow: ['0.0.0.0/0', '::/0'], maxAddresses: DEFAULT_MAX_ADDRESSES };
    const started = Date.now();
    const parsed = parse('0.0.0.0/0, ::/0, ::-ffff::, 0.0.0.0-255.255.255.255', everything);
    assert.deepEqual(parsed.errors.map((e) => e.message), [
      '4294967294 addresses, more than the limit of 65536',
      '340282366920938463463374607431768211456 addresses, more than the limit of 65536',
      `${(0xffffn << 112n) + 1n} addresses, more than the limit of 65536`,
      '4294967296 addresses, more than the limit of 65536',
    ]);
    assert.ok(Date.now() - started < 1000);
  });

  test('an invalid limit or allow-list is a configuration error and throws', () => {
    assert.throws(() => parse('127.0.0.1', { allow: DEFAULT_ALLOW, maxAddresses: 0 }), RangeError);
    assert.throws(() => parse('127.0.0.1', { allow: DEFAULT_ALLOW, maxAddresses: 1.5 }), RangeError);
    assert.throws(() => parse('127.0.0.1', { allow: ['127.0.0.0/33'], maxAddresses: 10 }), /127\.0\.0\.0\/33/);
  });
});

describe('parseNetworkRange: malformed input', () => {
  test('each bad part is named with the reason', () => {
    const parsed = parse('127.0.0.300, 127.0.0.5-3, 127.0.0.1/33, ::1/129, 127.0.0.1/, 127.0.0.1/x, 127.0.0.1/08, 127.0.0.1-256, 127.0.0.1-1.2, 127.00.0.1, 0x7f.0.0.1');
    assert.deepEqual(parsed.addresses, []);
    assert.deepEqual(parsed.errors, [
      { part: '127.0.0.300', message: 'not a valid IPv4 address (four numbers from 0 to 255)' },
      { part: '127.0.0.5-3', message: 'the range is reversed: 127.0.0.3 comes before 127.0.0.5' },
      { part: '127.0.0.1/33', message: 'prefix length "/33" must be a number from 0 to 32' },
      { part: '::1/129', message: 'prefix length "/129" must be a number from 0 to 128' },
      { part: '127.0.0.1/', message: 'prefix length "/" must be a number from 0 to 32' },
      { part: '127.0.0.1/x', message: 'prefix length "/x" must be a number from 0 to 32' },
      { part: '127.0.0.1/08', message: 'prefix length "/08" must be a number from 0 to 32' },
      { part: '127.0.0.1-256', message: 'the end of the range "256" is not an IPv4 address or a last octet (0-255)' },
      { part: '127.0.0.1-1.2', message: 'the end of the range "1.2" is not an IPv4 address or a last octet (0-255)' },
      { part: '127.00.0.1', message: 'not a valid IPv4 address (four numbers from 0 to 255)' },
      { part: '0x7f.0.0.1', message: 'not an IP address, CIDR block, range or host name' },
    ]);
  });

  test('reversed full ranges are refused', () => {
    assert.deepEqual(parse('127.0.1.0-127.0.0.255').errors, [{ part: '127.0.1.0-127.0.0.255', message: 'the range is reversed: 127.0.0.255 comes before 127.0.1.0' }]);
  });

  test('empty parts are refused by position; an empty range is refused', () => {
    assert.deepEqual(parse('127.0.0.1,,127.0.0.2,').errors, [
      { part: '', message: 'entry 2 of 4 is empty (a stray comma?)' },
      { part: '', message: 'entry 4 of 4 is empty (a stray comma?)' },
    ]);
    for (const empty of ['', '   ']) {
      assert.deepEqual(parse(empty), { addresses: [], hostnames: [], count: 0, errors: [{ part: '', message: 'the network range is empty' }] });
    }
  });
});

describe('parseAllowList', () => {
  test('CIDR blocks and single addresses, in canonical form', () => {
    assert.deepEqual(parseAllowList([' 10.0.0.0/8', '192.0.2.7', '::1', '2001:DB8::/32', '0.0.0.0/0']).entries, ['10.0.0.0/8', '192.0.2.7/32', '::1/128', '2001:db8::/32', '0.0.0.0/0']);
  });

  test('a bad entry throws naming it; host bits set are refused (a typo could widen the list)', () => {
    assert.throws(() => parseAllowList(['127.0.0.0/8', '10.0.0.1/8']), { message: 'Allow-list entry "10.0.0.1/8" is not a CIDR block or address: host bits are set (the network is 10.0.0.0/8)' });
    assert.throws(() => parseAllowList(['lan']), /"lan"/);
    assert.throws(() => parseAllowList(['10.0.0.0/8-9']), /"10\.0\.0\.0\/8-9"/);
    assert.throws(() => parseAllowList(['']), /""/);
  });

  test('net.BlockList and the interval check agree at every edge', () => {
    const allow = parseAllowList(['10.0.0.0/8', '10.1.0.0/16', '192.168.4.0/23', '2001:db8::/127']);
    const cases: Array<[string, boolean]> = [
      ['9.255.255.255', false],
      ['10.0.0.0', true],
      ['10.255.255.255', true],
      ['11.0.0.0', false],
      ['192.168.3.255', false],
      ['192.168.4.0', true],
      ['192.168.5.255', true],
      ['192.168.6.0', false],
      ['2001:db8::', true],
      ['2001:db8::1', true],
      ['2001:db8::2', false],
      ['127.0.0.1', false],
      ['::1', false],
    ];
    for (const [address, expected] of cases) {
      assert.equal(allow.allows(address), expected, address);
      assert.equal(parse(address, { allow: [...allow.entries], maxAddresses: 10 }).errors.length === 0, expected, address);
    }
    assert.equal(allow.allows('db.lan'), false);
  });
});

describe('resolveHostnames', () => {
  const fake =
    (table: Record<string, string[]>): LookupAll =>
    async (hostname) => {
      const found = table[hostname];
      if (!found) {
        throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
      }
      return found.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
    };

  test('localhost resolves (system resolver, /etc/hosts) to loopback only', async () => {
    const { hosts, errors } = await resolveHostnames(['localhost'], LOOPBACK);
    assert.deepEqual(errors, []);
    assert.ok(hosts.length > 0);
    for (const host of hosts) {
      assert.equal(host.hostname, 'localhost');
      assert.ok(['127.0.0.1', '::1'].includes(host.address), host.address);
    }
  });

  test('a resolved address outside the allow-list is left out and named with its host name', async () => {
    const lookup = fake({ 'intranet.example': ['10.0.0.7', '127.0.0.9', '0:0::1', '::ffff:10.0.0.8', '::FFFF:127.0.0.10'] });
    const { hosts, errors } = await resolveHostnames(['Intranet.example'], LOOPBACK, lookup);
    assert.deepEqual(hosts, [
      { address: '127.0.0.9', hostname: 'intranet.example' },
      { address: '127.0.0.10', hostname: 'intranet.example' },
      { address: '::1', hostname: 'intranet.example' },
    ]);
    assert.deepEqual(errors, [
      { part: 'intranet.example', message: 'resolves to 10.0.0.7, outside the allowed networks (127.0.0.0/8, ::1/128)' },
      { part: 'intranet.example', message: 'resolves to 10.0.0.8, outside the allowed networks (127.0.0.0/8, ::1/128)' },
    ]);
  });

  test("with the operator's list, their addresses are kept (nothing is sent to them)", async () => {
    const { hosts, errors } = await resolveHostnames(['db.lan'], OPERATOR, fake({ 'db.lan': ['192.168.1.20'] }));
    assert.deepEqual([hosts, errors], [[{ address: '192.168.1.20', hostname: 'db.lan' }], []]);
  });

  test('unresolvable and invalid names are problems; an address reached twice is kept once, under the first name, in address order', async () => {
    const lookup = fake({ a: ['127.0.0.5', '127.0.0.2'], b: ['127.0.0.2', '127.0.0.3'] });
    const { hosts, errors } = await resolveHostnames(['a', 'b', 'A', 'gone.example', 'bad_name'], LOOPBACK, lookup);
    assert.deepEqual(hosts, [
      { address: '127.0.0.2', hostname: 'a' },
      { address: '127.0.0.3', hostname: 'b' },
      { address: '127.0.0.5', hostname: 'a' },
    ]);
    assert.deepEqual(errors, [
      { part: 'gone.example', message: 'could not be resolved (ENOTFOUND)' },
      { part: 'bad_name', message: 'not a valid host name' },
    ]);
  });

  test('at most maxAddresses distinct addresses', async () => {
    const lookup = fake({ many: ['127.0.0.1', '127.0.0.2', '127.0.0.3'] });
    const { hosts, errors } = await resolveHostnames(['many'], { allow: DEFAULT_ALLOW, maxAddresses: 2 }, lookup);
    assert.deepEqual(hosts.map((h) => h.address), ['127.0.0.1', '127.0.0.2']);
    assert.deepEqual(errors, [{ part: 'many', message: 'resolves to 127.0.0.3, more than the limit of 2 addresses' }]);
  });
});
