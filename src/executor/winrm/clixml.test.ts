/**
 * CLIXML stderr decoded to console text: the format as PowerShell writes it (MS-PSRP §2.2.5.1),
 * and the same reading as pywinrm's where pywinrm's simpler one applies.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { pywinrmSkip, runPeer } from '../../../test/peers/python.ts';
import { decodeClixml } from './clixml.ts';

const NS = 'http://schemas.microsoft.com/powershell/2004/04';
const PROGRESS =
  '<Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64>' +
  '<PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj>';
const clixml = (body: string) => `#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="${NS}">${body}</Objs>`;

describe('decodeClixml', () => {
  test('error records become their console text; progress records are dropped', () => {
    const stderr = clixml(
      PROGRESS +
        '<S S="Error">Write-Error : disk_x005F_full &lt;C:&gt; at 95%_x000D__x000A_</S>' +
        '<S S="Error">At line:1 char:1_x000D__x000A_</S><S S="Error">+ Write-Error "disk_full"_x000D__x000A_</S>',
    );
    assert.equal(decodeClixml(stderr), 'Write-Error : disk_full <C:> at 95%\nAt line:1 char:1\n+ Write-Error "disk_full"\n');
  });

  test('warning, verbose and debug records get their console prefixes; other escapes (tab, non-BMP pairs) decode', () => {
    const stderr = clixml('<S S="warning">low space_x000A_</S><S S="verbose">step 1_x0009_ok_x000A_</S><S S="debug">_xD83D__xDE80_ launched_x000A_</S>');
    assert.equal(decodeClixml(stderr), 'WARNING: low space\nVERBOSE: step 1\tok\nDEBUG: 🚀 launched\n');
  });

  test('text around and between blocks is kept; a block that does not parse is kept as it came', () => {
    assert.equal(decodeClixml('plain stderr\n'), 'plain stderr\n');
    assert.equal(decodeClixml(`native tool failed\n${clixml('<S S="Error">ps failed_x000A_</S>')}`), 'native tool failed\nps failed\n');
    assert.equal(decodeClixml('#< CLIXML\r\n<Objs><S S="Error">cut off'), '#< CLIXML\r\n<Objs><S S="Error">cut off');
  });

  test('reads error records as pywinrm does', { skip: pywinrmSkip() }, async () => {
    const samples = [
      clixml(PROGRESS + '<S S="Error">Get-Item : Cannot find path_x000D__x000A_</S><S S="Error">    + CategoryInfo : ObjectNotFound_x000D__x000A_</S>'),
      clixml('<S S="Error">one line &amp; done_x000D__x000A_</S>'),
      'not clixml at all',
    ];
    const theirs = await runPeer<string[]>('pywinrm_clixml.py', samples);
    // pywinrm strips surrounding whitespace of the whole message; so do we, for the comparison.
    assert.deepEqual(
      samples.map((s) => decodeClixml(s).trim()),
      theirs.map((s) => s.trim()),
    );
  });
});
