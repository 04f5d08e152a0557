/**
 * The file-copy script of src/executor/winrm/copy.ts as the WinRM stand-in (test/winrm-server.ts)
 * emulates it: there is no PowerShell here, so its effect is reproduced in Node. That proves the
 * transfer (stdin over Send, the hash check), not the PowerShell.
 */
import { COPY_SCRIPT_MARKER } from '../src/executor/winrm/copy.ts';

/**
 * The copy script of src/executor/winrm/copy.ts, emulated (there is no PowerShell here): its
 * destination, or undefined when `script` is not that script.
 */
export function copyDestination(script: string): string | undefined {
  if (!script.startsWith(COPY_SCRIPT_MARKER)) {
    return undefined;
  }
  const quoted = /^\$path = '((?:[^'\u2018\u2019\u201a\u201b]|''|\u2018\u2018|\u2019\u2019|\u201a\u201a|\u201b\u201b)*)'\r?$/m.exec(script)?.[1];
  return quoted?.replace(/(['\u2018\u2019\u201a\u201b])\1/g, '$1');
}

/** What the copy script does, in Node: base64 lines from stdin into `<path>.oc-partial`, moved into place; prints the SHA-256. */
export const EMULATED_COPY = `
const fs = require('node:fs'), path = require('node:path'), crypto = require('node:crypto');
const [target, corrupt] = process.argv.slice(1);
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  try {
    const data = Buffer.concat(Buffer.concat(chunks).toString('ascii').split(/\\r?\\n/).filter(Boolean).map((l) => Buffer.from(l, 'base64')));
    if (corrupt && data.length > 0) data[0] ^= 0xff;
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target + '.oc-partial', data);
    fs.renameSync(target + '.oc-partial', target);
    process.stdout.write(crypto.createHash('sha256').update(data).digest('hex') + '\\r\\n');
  } catch (e) {
    process.stderr.write(String(e.message) + '\\r\\n');
    process.exit(1);
  }
});
`;
