import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { normalizeFingerprint, tlsConnector, TlsError, tlsMode } from './tls.ts';

const HEX = '0123456789abcdef'.repeat(4);
const NORMAL = HEX.toUpperCase().match(/../g)?.join(':');

describe('TLS options', () => {
  test('fingerprints: AA:BB:… or 64 hex digits in any case become uppercase AA:BB:…; anything else is refused', () => {
    assert.equal(normalizeFingerprint(HEX), NORMAL);
    assert.equal(normalizeFingerprint(HEX.toUpperCase()), NORMAL);
    assert.equal(normalizeFingerprint(NORMAL?.toLowerCase() ?? ''), NORMAL);
    assert.equal(normalizeFingerprint(` ${NORMAL} `), NORMAL);
    for (const bad of ['', HEX.slice(2), `${HEX}ab`, HEX.replace('0', 'g'), NORMAL?.replace(':', '') ?? '', NORMAL?.replaceAll(':', '-') ?? '', `SHA256:${HEX}`]) {
      assert.equal(normalizeFingerprint(bad), undefined, bad);
    }
  });

  test('the mode a response reports: a pin wins; verify false is not_verified; otherwise verified', () => {
    assert.equal(tlsMode(undefined), 'verified');
    assert.equal(tlsMode({ verify: true }), 'verified');
    assert.equal(tlsMode({ verify: false }), 'not_verified');
    assert.equal(tlsMode({ verify: false, fingerprint: HEX }), 'pinned');
  });

  test('a malformed pin is a programming error, refused when the connector is built', () => {
    assert.throws(() => tlsConnector({ verify: true, fingerprint: 'AB:CD' }), TypeError);
  });

  test('https without a port (undici drops :443 from an origin) connects to 443, not 80; a refused port is no TlsError', async () => {
    const connect = tlsConnector({ verify: true });
    const err = await new Promise<Error | null>((resolve) => connect({ protocol: 'https:', hostname: '127.0.0.1', port: '' }, (e, socket) => (socket?.destroy(), resolve(e))));
    assert.ok(err && !(err instanceof TlsError), String(err));
    assert.equal((err as { code?: string }).code, 'ECONNREFUSED');
    assert.equal((err as { port?: number }).port, 443);
  });
});
