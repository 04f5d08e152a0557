/** The SOAP of a Command: its command line escaped by the XML library, and its console options. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { XMLParser } from 'fast-xml-parser';

import { soapRequest } from './soap.ts';

const target = { url: 'https://win.example.test:5986/wsman', operationTimeoutS: 20 };
const parser = new XMLParser({ ignoreAttributes: false, removeNSPrefix: true, attributeNamePrefix: '@', textNodeName: '#text', parseTagValue: false });

/** The WINRS options and the command line of a Command envelope, as a server reads them. */
function readCommand(xml: string) {
  const envelope = parser.parse(xml).Envelope;
  const options = [envelope.Header.OptionSet.Option].flat() as Array<Record<string, string>>;
  return {
    options: Object.fromEntries(options.map((o) => [o['@Name'], o['#text']])),
    shellId: envelope.Header.SelectorSet.Selector['#text'] as string,
    command: envelope.Body.CommandLine.Command as string,
    args: [envelope.Body.CommandLine.Arguments ?? []].flat() as string[],
  };
}

describe('soapRequest.command', () => {
  test('without stdin the command keeps console-mode stdin (WINRS_CONSOLEMODE_STDIN TRUE)', () => {
    const read = readCommand(soapRequest.command(target, 'SHELL-1', 'ipconfig', []));
    assert.deepEqual(read.options, { WINRS_CONSOLEMODE_STDIN: 'TRUE', WINRS_SKIP_CMD_SHELL: 'FALSE' });
    assert.deepEqual(read.args, []);
    assert.equal(read.shellId, 'SHELL-1');
  });

  test('with stdin streamed to it, stdin is a pipe (WINRS_CONSOLEMODE_STDIN FALSE, as Ansible sends)', () => {
    const read = readCommand(soapRequest.command(target, 'SHELL-1', 'powershell', ['-NoProfile'], { stdin: true }));
    assert.deepEqual(read.options, { WINRS_CONSOLEMODE_STDIN: 'FALSE', WINRS_SKIP_CMD_SHELL: 'FALSE' });
    assert.deepEqual(read.args, ['-NoProfile']);
  });

  test('markup in the command and its arguments is escaped, never spliced in', () => {
    const xml = soapRequest.command(target, 'S', 'echo </rsp:Command><x a="1">&amp;', ['"]]>', "ü'<"]);
    assert.doesNotMatch(xml, /<x a=/);
    const read = readCommand(xml);
    assert.equal(read.command, 'echo </rsp:Command><x a="1">&amp;');
    assert.deepEqual(read.args, ['"]]>', "ü'<"]);
  });
});
