/**
 * The nmap backend: the XML report parsed from a fixture (its addresses are documentation and
 * private ranges, only parsed), and real nmap run against listeners on loopback only. nmap is
 * required (.ci/run installs it), so these never skip.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { after, before, describe, test } from 'node:test';

import { nmapAvailable, nmapOpenPorts, parseNmapXml } from './nmap.ts';

/** A report as nmap 7.93 writes it for `-sT -oX -` (trimmed), with what --open would still show and more. */
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/bin/../share/nmap/nmap.xsl" type="text/xsl"?>
<!-- Nmap 7.93 scan initiated Thu Nov 26 15:03:43 2026 as: nmap -sT -Pn -n -oX - -p 22,80,443,3389,5985 -iL - -->
<nmaprun scanner="nmap" args="nmap -sT -Pn -n -oX - -p 22,80,443,3389,5985 -iL -" start="1795705423" startstr="Thu Nov 26 15:03:43 2026" version="7.93" xmloutputversion="1.05">
<scaninfo type="connect" protocol="tcp" numservices="5" services="22,80,443,3389,5985"/>
<verbose level="0"/>
<debugging level="0"/>
<host starttime="1795705423" endtime="1795705424"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="192.168.1.20" addrtype="ipv4"/>
<address addr="52:54:00:12:34:56" addrtype="mac" vendor="QEMU virtual NIC"/>
<hostnames>
<hostname name="db.lan" type="PTR"/>
</hostnames>
<ports><extraports state="closed" count="2">
<extrareasons reason="conn-refused" count="2" proto="tcp" ports="443,3389"/>
</extraports>
<port protocol="tcp" portid="80"><state state="filtered" reason="no-response" reason_ttl="0"/><service name="http" method="table" conf="3"/></port>
<port protocol="tcp" portid="5985"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="wsman" method="table" conf="3"/></port>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="ssh" method="table" conf="3"/></port>
<port protocol="udp" portid="161"><state state="open" reason="udp-response" reason_ttl="64"/><service name="snmp" method="table" conf="3"/></port>
</ports>
<times srtt="412" rttvar="3000" to="100000"/>
</host>
<host starttime="1795705423" endtime="1795705424"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="10.0.0.5" addrtype="ipv4"/>
<hostnames>
</hostnames>
<ports><extraports state="filtered" count="3">
<extrareasons reason="no-response" count="3" proto="tcp" ports="22,443,5985"/>
</extraports>
<port protocol="tcp" portid="80"><state state="closed" reason="conn-refused" reason_ttl="0"/><service name="http" method="table" conf="3"/></port>
<port protocol="tcp" portid="3389"><state state="open|filtered" reason="no-response" reason_ttl="0"/><service name="ms-wbt-server" method="table" conf="3"/></port>
</ports>
<times srtt="300" rttvar="2000" to="100000"/>
</host>
<host starttime="1795705423" endtime="1795705424"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="10.0.0.4" addrtype="ipv4"/>
<hostnames>
</hostnames>
<ports><port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="https" method="table" conf="3"/></port>
<port protocol="tcp" portid="49152"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="unknown" method="table" conf="3"/></port>
<port protocol="tcp" portid="45435"><state state="open" reason="syn-ack" reason_ttl="0"/></port>
</ports>
<times srtt="300" rttvar="2000" to="100000"/>
</host>
<host starttime="1795705423" endtime="1795705424"><status state="up" reason="user-set" reason_ttl="0"/>
<address addr="2001:db8::10" addrtype="ipv6"/>
<hostnames>
</hostnames>
<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="0"/><service name="ssh" method="table" conf="3"/></port>
</ports>
</host>
<runstats><finished time="1795705424" timestr="Thu Nov 26 15:03:44 2026" summary="Nmap done at Thu Nov 26 15:03:44 2026; 4 IP addresses (4 hosts up) scanned in 0.52 seconds" elapsed="0.52" exit="success"/><hosts up="4" down="0" total="4"/>
</runstats>
</nmaprun>
`;

describe('parseNmapXml', () => {
  test('only open TCP ports, by address then port; the service from the table, none for "unknown" or a missing one; MAC addresses and hosts without open ports ignored', () => {
    assert.deepEqual(parseNmapXml(REPORT), [
      { host: '10.0.0.4', port: 443, nmapService: 'https' },
      { host: '10.0.0.4', port: 45435, nmapService: null },
      { host: '10.0.0.4', port: 49152, nmapService: null },
      { host: '192.168.1.20', port: 22, nmapService: 'ssh' },
      { host: '192.168.1.20', port: 5985, nmapService: 'wsman' },
      { host: '2001:db8::10', port: 22, nmapService: 'ssh' },
    ]);
  });

  test('a report with no hosts (all down, or --open with nothing open) is empty', () => {
    const empty = REPORT.replace(/<host [\s\S]*<\/host>\n/, '');
    assert.ok(!empty.includes('<host '));
    assert.deepEqual(parseNmapXml(empty), []);
    assert.deepEqual(parseNmapXml('<nmaprun></nmaprun>'), []);
  });

  test('text that is not a well-formed nmap report is an error', () => {
    assert.throws(() => parseNmapXml(REPORT.slice(0, REPORT.indexOf('</ports>'))), /not well-formed XML/);
    assert.throws(() => parseNmapXml('Starting Nmap 7.93'), /not well-formed XML/);
    assert.throws(() => parseNmapXml('<report/>'), /no <nmaprun> element/);
  });
});

describe('nmapOpenPorts against loopback', () => {
  const servers: Server[] = [];
  const listen = async (host: string) => {
    // nmap's connect scan resets the connection: that is the error to ignore.
    const server = createServer((socket) => socket.on('error', () => {}).destroy());
    servers.push(server);
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, host, resolve));
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    return address.port;
  };
  let open4 = 0;
  let open6 = 0;
  let closed = 0;

  before(async () => {
    assert.ok(await nmapAvailable(), 'nmap is required for these tests (apt-get install nmap; .ci/run installs it)');
    [open4, open6] = [await listen('127.0.0.1'), await listen('::1')];
    // A port that was just free and is now closed again.
    const spare = createServer();
    closed = await new Promise<number>((resolve) => spare.listen(0, '127.0.0.1', () => resolve((spare.address() as { port: number }).port)));
    await new Promise((resolve) => spare.close(resolve));
  });

  after(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  // An ephemeral port may carry a name in nmap's services table (33435 is "mtrace"): what it is
  // called is parseNmapXml's business, tested above; these tests check which ports are found.
  const hostPorts = (found: { host: string; port: number }[]) => found.map(({ host, port }) => ({ host, port }));

  test("the listener's port is found, the closed one is not", async () => {
    assert.deepEqual(hostPorts(await nmapOpenPorts(['127.0.0.1'], [closed, open4], { timing: 'T4' })), [{ host: '127.0.0.1', port: open4 }]);
  });

  test('IPv4 and IPv6 hosts in one call (nmap runs once per family); a loopback address with nothing listening has no ports', async () => {
    const found = await nmapOpenPorts(['::1', '127.0.0.1', '127.0.0.2', '127.0.0.1'], [open4, open6, closed], {});
    assert.deepEqual(hostPorts(found), [
      { host: '127.0.0.1', port: open4 },
      { host: '::1', port: open6 },
    ]);
  });

  test('a port list too long for one argument is split over several runs', async () => {
    // Every other port: 32,768 separate entries, far past Linux's 128 KiB limit on one argument.
    const ports = Array.from({ length: 32_768 }, (_, i) => 2 * i + 1);
    const found = await nmapOpenPorts(['127.0.0.1'], [...ports, open4, closed], { timing: 'T4' });
    assert.ok(found.some((p) => p.port === open4));
    assert.ok(!found.some((p) => p.port === closed));
  });

  test('an abort kills nmap: a full port scan (about 3 s here) returns at once with what was finished', async () => {
    const controller = new AbortController();
    const all = Array.from({ length: 65_535 }, (_, i) => i + 1);
    const started = Date.now();
    setTimeout(() => controller.abort(), 300);
    const found = await nmapOpenPorts(['127.0.0.1'], all, { signal: controller.signal });
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
    assert.ok(Array.isArray(found));
    assert.deepEqual(await nmapOpenPorts(['127.0.0.1'], [open4], { signal: controller.signal }), [], 'already aborted: nmap is not started');
  });

  test('targets must be addresses and ports 1-65535: nothing else reaches the command line', async () => {
    await assert.rejects(nmapOpenPorts(['localhost'], [22], {}), TypeError);
    await assert.rejects(nmapOpenPorts(['-iL/etc/passwd'], [22], {}), TypeError);
    await assert.rejects(nmapOpenPorts(['fe80::1%lo'], [22], {}), TypeError);
    await assert.rejects(nmapOpenPorts(['127.0.0.1'], [0], {}), RangeError);
    await assert.rejects(nmapOpenPorts(['127.0.0.1'], [65_536], {}), RangeError);
    assert.deepEqual(await nmapOpenPorts([], [22], {}), []);
  });

  test('without nmap on PATH: not available, and a scan says so', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      assert.equal(await nmapAvailable(), false);
      await assert.rejects(nmapOpenPorts(['127.0.0.1'], [open4], {}), /nmap is not installed/);
    } finally {
      process.env.PATH = path;
    }
  });
});
