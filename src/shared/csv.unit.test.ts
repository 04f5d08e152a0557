import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { parseCsv } from './csv.ts';

describe('parseCsv', () => {
  test('plain records with LF line ends, numbered from 1', () => {
    assert.deepEqual(parseCsv('name,host\nweb-1,10.0.0.1\nweb-2,10.0.0.2'), [
      { line: 1, fields: ['name', 'host'] },
      { line: 2, fields: ['web-1', '10.0.0.1'] },
      { line: 3, fields: ['web-2', '10.0.0.2'] },
    ]);
  });

  test('CRLF line ends leave no carriage return in fields; a trailing line end adds no record', () => {
    assert.deepEqual(parseCsv('a,b\r\nc,d\r\n'), [
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['c', 'd'] },
    ]);
    assert.deepEqual(parseCsv('a,b\n'), [{ line: 1, fields: ['a', 'b'] }]);
  });

  test('empty fields are kept', () => {
    assert.deepEqual(parseCsv('a,,c\n,x,\n,'), [
      { line: 1, fields: ['a', '', 'c'] },
      { line: 2, fields: ['', 'x', ''] },
      { line: 3, fields: ['', ''] },
    ]);
  });

  test('quoted fields may hold commas and doubled quotes', () => {
    assert.deepEqual(parseCsv('"Web, primary",x\n"say ""hi""",""""\n"",y'), [
      { line: 1, fields: ['Web, primary', 'x'] },
      { line: 2, fields: ['say "hi"', '"'] },
      { line: 3, fields: ['', 'y'] },
    ]);
  });

  test('a quote inside an unquoted field is literal', () => {
    assert.deepEqual(parseCsv('ab"c,d'), [{ line: 1, fields: ['ab"c', 'd'] }]);
  });

  test('newlines inside quotes stay in the field and later records keep their file line numbers', () => {
    const text = 'h1,h2\n"multi\nline\nvalue",x\nnext,y\r\n"crlf\r\ninside",z\r\nlast,w';
    assert.deepEqual(parseCsv(text), [
      { line: 1, fields: ['h1', 'h2'] },
      { line: 2, fields: ['multi\nline\nvalue', 'x'] },
      { line: 5, fields: ['next', 'y'] },
      { line: 6, fields: ['crlf\r\ninside', 'z'] },
      { line: 8, fields: ['last', 'w'] },
    ]);
  });

  test('blank lines are skipped but still counted', () => {
    assert.deepEqual(parseCsv('a\n\n\r\nb\n\n'), [
      { line: 1, fields: ['a'] },
      { line: 4, fields: ['b'] },
    ]);
    assert.deepEqual(parseCsv(''), []);
    assert.deepEqual(parseCsv('\n\r\n\n'), []);
  });

  test('an unterminated quote throws, naming the line it started on', () => {
    assert.throws(() => parseCsv('a,b\n"oops,c\nd,e'), /unterminated quoted field starting on line 2/);
    assert.throws(() => parseCsv('"'), /unterminated/);
  });
});
