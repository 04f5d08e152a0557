/**
 * File copy to Windows over WinRM: one PowerShell process reads base64 lines from its stdin (sent
 * with WS-Management Send, ~60 KiB of file per message), writes them to a temporary file beside
 * the destination, hashes them, moves the file into place and prints the SHA-256, which must match
 * the hash of what we sent. No database, no domain types.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

import { runWinrmCommand, type WinrmExecOptions, type WinrmOptions, type WinrmResult } from './client.ts';

/** File bytes per Send: base64 twice (line, then SOAP) keeps a message under the default 150 KiB envelope. */
const CHUNK_BYTES = 60_000;

/** The first line of the copy script (the test stand-in recognises it). */
export const COPY_SCRIPT_MARKER = '# OpsConductor file copy v1';

/** A PowerShell single-quoted string: quote characters (PowerShell also treats U+2018–U+201B as such) are doubled. */
export function powershellQuote(text: string): string {
  return `'${text.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`;
}

/** The script that receives the file at `remotePath` (PowerShell 3 and later). */
export function copyScript(remotePath: string): string {
  return [
    COPY_SCRIPT_MARKER,
    "$ErrorActionPreference = 'Stop'",
    `$path = ${powershellQuote(remotePath)}`,
    '$dir = [IO.Path]::GetDirectoryName($path)',
    'if ($dir -and -not [IO.Directory]::Exists($dir)) { [void][IO.Directory]::CreateDirectory($dir) }',
    "$partial = $path + '.oc-partial'",
    '$sha = [Security.Cryptography.SHA256]::Create()',
    '$out = [IO.File]::Create($partial)',
    'try {',
    '  foreach ($line in $input) {',
    '    if ($line.Length -eq 0) { continue }',
    '    $bytes = [Convert]::FromBase64String($line)',
    '    [void]$sha.TransformBlock($bytes, 0, $bytes.Length, $null, 0)',
    '    $out.Write($bytes, 0, $bytes.Length)',
    '  }',
    '  [void]$sha.TransformFinalBlock((New-Object byte[] 0), 0, 0)',
    '} finally { $out.Dispose() }',
    'Move-Item -LiteralPath $partial -Destination $path -Force',
    "[BitConverter]::ToString($sha.Hash).Replace('-', '').ToLowerInvariant()",
  ].join('\r\n');
}

/** What a copy did. */
export interface CopyResult {
  /** Bytes sent (the whole file unless stopped). */
  bytes: number;
  sha256: string;
  /** The PowerShell process's own result: a non-zero exit code or stderr explains a failure. */
  command: WinrmResult;
  /** The host wrote exactly what we sent. */
  verified: boolean;
}

/** Reads `localPath` as base64 lines, hashing and counting as it goes. */
async function* lines(localPath: string, progress: { bytes: number; hash: ReturnType<typeof createHash> }): AsyncIterable<Buffer> {
  for await (const chunk of createReadStream(localPath, { highWaterMark: CHUNK_BYTES }) as AsyncIterable<Buffer>) {
    progress.bytes += chunk.length;
    progress.hash.update(chunk);
    yield Buffer.from(`${chunk.toString('base64')}\r\n`, 'ascii');
  }
}

/** Copies `localPath` to `remotePath` on the host; throws WinrmError when the host cannot be reached. */
export async function copyToWinrm(options: WinrmOptions, localPath: string, remotePath: string, exec: WinrmExecOptions = {}): Promise<CopyResult> {
  await stat(localPath); // a missing file fails here, before a shell is opened
  const progress = { bytes: 0, hash: createHash('sha256') };
  const script = Buffer.from(copyScript(remotePath), 'utf16le').toString('base64');
  const command = await runWinrmCommand(options, 'powershell', ['-NoProfile', '-NonInteractive', '-EncodedCommand', script], { ...exec, stdin: lines(localPath, progress) });
  const sha256 = progress.hash.digest('hex');
  const reported = command.stdout.trim().split(/\r?\n/).pop() ?? '';
  return { bytes: progress.bytes, sha256, command, verified: command.exitCode === 0 && reported === sha256 };
}
