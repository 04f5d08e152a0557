import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { retryTransient } from './errors.ts';

const pgError = (code: string) => Object.assign(new Error(`pg ${code}`), { code });

describe('retryTransient', () => {
  test('runs a statement PostgreSQL aborted for a deadlock or serialization failure again', async () => {
    const codes = ['40P01', '40001'];
    let calls = 0;
    const result = await retryTransient(async () => {
      calls++;
      if (codes.length > 0) {
        throw pgError(codes.shift() as string);
      }
      return 'done';
    });
    assert.equal(result, 'done');
    assert.equal(calls, 3);
  });

  test('gives up after the attempts, with the last error', async () => {
    let calls = 0;
    await assert.rejects(
      retryTransient(
        async () => {
          calls++;
          throw pgError('40P01');
        },
        { attempts: 3 },
      ),
      /pg 40P01/,
    );
    assert.equal(calls, 3);
  });

  test('any other error is not retried; alsoRetry adds codes', async () => {
    let calls = 0;
    await assert.rejects(
      retryTransient(async () => {
        calls++;
        throw pgError('23505');
      }),
      /pg 23505/,
    );
    assert.equal(calls, 1);
    let again = 0;
    await retryTransient(
      async () => {
        if (again++ === 0) {
          throw pgError('23505');
        }
      },
      { alsoRetry: ['23505'] },
    );
    assert.equal(again, 2);
  });
});
