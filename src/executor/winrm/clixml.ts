/**
 * PowerShell run with -EncodedCommand writes its error, warning, verbose and debug streams to
 * stderr as CLIXML (`#< CLIXML` then serialized objects, MS-PSRP §2.2.5). This turns them back into
 * the text a console would have shown; progress records are dropped; other text passes through.
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';

const HEADER = '#< CLIXML';
const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', textNodeName: '#text', parseTagValue: false, trimValues: false, isArray: (name) => name === 'S' });
const PREFIX: Record<string, string> = { warning: 'WARNING: ', verbose: 'VERBOSE: ', debug: 'DEBUG: ' };

/** `_xHHHH_` escapes (XML-unsafe or control characters, and `_x005F_` for an underscore) back to characters. */
const unescape = (text: string) => text.replace(/_x([0-9A-Fa-f]{4})_/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));

function decodeBlock(xml: string): string {
  const doc = parser.parse(xml) as { Objs?: { S?: Array<string | Record<string, string>> } };
  return (doc.Objs?.S ?? [])
    .map((s) => {
      const [text, stream] = typeof s === 'string' ? [s, ''] : [s['#text'] ?? '', (s['@S'] ?? '').toLowerCase()];
      return (PREFIX[stream] ?? '') + unescape(text);
    })
    .join('')
    .replace(/\r\n/g, '\n');
}

/** `stderr` with every CLIXML block decoded; text that is not CLIXML (or not well-formed) is kept as it came. */
export function decodeClixml(stderr: string): string {
  if (!stderr.includes(HEADER)) {
    return stderr;
  }
  // Odd indices are the headers themselves, each followed by its block.
  const parts = stderr.split(/(#< CLIXML\r?\n)/);
  return parts
    .map((part, i) => {
      if (i % 2 === 1) {
        return '';
      }
      if (i === 0) {
        return part;
      }
      const xml = part.trim();
      return XMLValidator.validate(xml) === true ? decodeBlock(xml) : (parts[i - 1] ?? '') + part;
    })
    .join('');
}
