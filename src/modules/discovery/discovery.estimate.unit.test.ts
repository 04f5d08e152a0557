/** The duration `POST /discovery/jobs/{id}/start` announces: the worst case of sockets, timeouts, retries and the rate limit. */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { estimateMs, humanDuration } from './discovery.service.ts';

test('every attempt timing out, twice per pair, concurrency at a time', () => {
  // 254 × 6 pairs = 3,048 attempts at worst: 6 rounds of 512 sockets, 1 s each.
  assert.equal(estimateMs(254, 6, { concurrency: 512, timeoutMs: 1000 }), 6000);
  assert.equal(humanDuration(6000), 'about 6 seconds');
});

test('a rate limit slower than the sockets sets the pace, retries included', () => {
  // 3,048 attempts at 100 a second: 30.48 s, longer than the 6 s the sockets would take.
  assert.equal(estimateMs(254, 6, { concurrency: 512, timeoutMs: 1000, ratePerSecond: 100 }), 30_480);
  assert.equal(estimateMs(254, 6, { concurrency: 512, timeoutMs: 1000, ratePerSecond: 100_000 }), 6000, 'a fast rate changes nothing');
  assert.equal(estimateMs(254, 6, { concurrency: 512, timeoutMs: 1000, ratePerSecond: 0 }), 6000, '0 is unlimited');
});
