/**
 * windows-core: PowerShell run over WinRM.
 *
 * NOT EXECUTED HERE: this machine has no PowerShell and no Windows host, so these tests do not run
 * a single windows-core step. They check what can be checked without one: every command renders
 * under the strict engine with sample parameters; every parameter reaches the script only as a
 * base64 literal decoded in PowerShell, so hostile values (quotes of every kind PowerShell knows,
 * subexpressions, here-string terminators, line breaks, Liquid syntax) stay data; the scripts use
 * the cmdlets their steps promise; brackets and strings balance; and the -EncodedCommand line fits
 * Windows' command-line limit.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { createTemplateEngine } from '../../src/shared/templating.ts';
import { getCatalogStep, loadCatalog, resolveParams } from './catalog.ts';

const engine = createTemplateEngine();
const target = { id: 7, name: 'win-1', host: '192.0.2.10', port: 5985, os_type: 'windows', tags: ['windows'] };
const steps = loadCatalog().find((l) => l.manifest.id === 'windows-core')?.manifest.steps ?? [];

/** Sample parameters for each step. */
const SAMPLES: Record<string, Record<string, unknown>> = {
  get_system_info: {},
  service_control: { service: 'Spooler', action: 'restart' },
  run_powershell: { script: "Get-Service | Where-Object Status -eq 'Running' | Select-Object -First 3" },
  registry_read: { path: 'HKLM:\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion', name: 'ProductName' },
  disk_usage: { drive: 'D:', threshold_percent: 90 },
};

/** What each script must call. */
const CMDLETS: Record<string, string[]> = {
  get_system_info: ['Get-CimInstance -ClassName Win32_OperatingSystem', 'Get-CimInstance -ClassName Win32_ComputerSystem', 'Get-CimInstance -ClassName Win32_Processor'],
  service_control: ['Get-Service -Name $Name', 'Start-Service -InputObject $Service', 'Stop-Service -InputObject $Service', 'Restart-Service -InputObject $Service', '$Service.WaitForStatus('],
  run_powershell: ['& ([ScriptBlock]::Create($Script))', 'exit $LASTEXITCODE'],
  registry_read: ['Get-Item -LiteralPath $Full', '$Key.GetValueKind($Name)', "'DoNotExpandEnvironmentNames'"],
  disk_usage: ['Get-CimInstance -ClassName Win32_LogicalDisk -Filter "DeviceID=\'$Drive\'"'],
};

/** Values that would break out of a naively quoted literal ( ’ and ‘ are quotes to PowerShell too). */
const HOSTILE = [
  "x'; Stop-Computer -Force; '",
  'a’; Remove-Item C:\\ -Recurse; ‘',
  '‚‛ $(Remove-Item C:\\ -Recurse)',
  '"; Start-Process calc; "',
  "line one\r\nline two\n'@\n\"@\n#",
  '{{ params.service }} {% raw %}',
  'ünïcødé ✓ `n $env:PATH',
];

const render = (name: string, values: Record<string, unknown>) => {
  const { step } = getCatalogStep('windows-core', name);
  assert.ok(step.implementation && !Array.isArray(step.implementation) && step.implementation.type === 'command');
  return engine.render(step.implementation.command, { params: resolveParams(step, values), target });
};

/** The decoded values of every `ConvertFrom-OcParam '<base64>'` in a script. */
function decodedParams(script: string): string[] {
  return [...script.matchAll(/ConvertFrom-OcParam '([^']*)'/g)].map((m) => {
    assert.match(m[1] ?? '', /^[A-Za-z0-9+/]*={0,2}$/, 'only base64 inside the literal');
    return Buffer.from(m[1] ?? '', 'base64').toString('utf8');
  });
}

/** Why PowerShell's brackets or strings do not balance (comments and strings skipped), or undefined. */
function unbalanced(script: string): string | undefined {
  const closers: Record<string, string> = { ')': '(', '}': '{', ']': '[' };
  const open: string[] = [];
  for (let i = 0; i < script.length; i++) {
    const c = script[i] as string;
    if (c === '#') {
      i = script.indexOf('\n', i) === -1 ? script.length : script.indexOf('\n', i);
    } else if (c === "'") {
      // '' is an escaped quote inside a single-quoted string.
      i++;
      while (i < script.length && !(script[i] === "'" && script[i + 1] !== "'")) {
        i += script[i] === "'" ? 2 : 1;
      }
      if (i >= script.length) {
        return 'unterminated single-quoted string';
      }
    } else if (c === '"') {
      // ` escapes the next character inside a double-quoted string.
      i++;
      while (i < script.length && script[i] !== '"') {
        i += script[i] === '`' ? 2 : 1;
      }
      if (i >= script.length) {
        return 'unterminated double-quoted string';
      }
    } else if ('({['.includes(c)) {
      open.push(c);
    } else if (c in closers && open.pop() !== closers[c]) {
      return `unexpected ${c} at ${script.slice(Math.max(0, i - 40), i + 1)}`;
    }
  }
  return open.length > 0 ? `unclosed ${open.join('')}` : undefined;
}

describe('windows-core (rendered and checked, not executed: no PowerShell here)', () => {
  test('every step is a PowerShell command with samples and expected cmdlets here', () => {
    assert.deepEqual(steps.map((s) => s.name).sort(), Object.keys(SAMPLES).sort());
    assert.deepEqual(Object.keys(CMDLETS).sort(), Object.keys(SAMPLES).sort());
    for (const step of steps) {
      assert.deepEqual(step.platforms, ['windows']);
      assert.ok(!Array.isArray(step.implementation) && step.implementation.type === 'command' && step.implementation.shell === 'powershell', step.name);
    }
  });

  test('every command renders with sample parameters and calls its cmdlets', () => {
    for (const [name, values] of Object.entries(SAMPLES)) {
      const script = render(name, values);
      assert.ok(!script.includes('{{') && !script.includes('{%'), `${name}: template syntax left`);
      assert.ok(script.startsWith("$ErrorActionPreference = 'Stop'"), `${name}: stops on errors`);
      for (const cmdlet of CMDLETS[name] ?? []) {
        assert.ok(script.includes(cmdlet), `${name} calls ${cmdlet}`);
      }
      assert.equal(unbalanced(script), undefined, name);
      const decoded = decodedParams(script);
      for (const [param, value] of Object.entries(resolveParams(getCatalogStep('windows-core', name).step, values))) {
        assert.ok(decoded.includes(String(value)), `${name}.${param} decodes to its value`);
      }
    }
    assert.deepEqual(decodedParams(render('disk_usage', SAMPLES.disk_usage ?? {})), ['D:', '90']);
    assert.deepEqual(decodedParams(render('service_control', { service: 'Spooler' })), ['Spooler', 'status', '60', 'false']);
  });

  test('templates put each parameter only into a base64 literal, and every parameter is used', () => {
    for (const step of steps) {
      assert.ok(!Array.isArray(step.implementation) && step.implementation.type === 'command');
      const command = step.implementation.command;
      const tags = [...command.matchAll(/\{\{.*?\}\}|\{%.*?%\}/gs)].map((m) => ({ tag: m[0], before: command.slice(0, m.index), after: command.slice((m.index ?? 0) + m[0].length) }));
      const used = new Set<string>();
      for (const { tag, before, after } of tags) {
        const param = /^\{\{ params\.([a-z_][a-z0-9_]*) \| base64_encode \}\}$/.exec(tag)?.[1];
        assert.ok(param && step.parameters[param], `${step.name}: ${tag} must be {{ params.<declared> | base64_encode }}`);
        assert.ok(before.endsWith("ConvertFrom-OcParam '") && after.startsWith("'"), `${step.name}: ${tag} must sit in ConvertFrom-OcParam '…'`);
        used.add(param);
      }
      assert.deepEqual([...used].sort(), Object.keys(step.parameters).sort(), `${step.name}: every parameter is used`);
    }
  });

  test('hostile parameter values stay data: never in the script as text, decoded byte for byte', () => {
    for (const step of steps) {
      for (const [param, decl] of Object.entries(step.parameters)) {
        if (decl.type !== 'string' || decl.enum) {
          continue;
        }
        for (const hostile of HOSTILE) {
          const script = render(step.name, { ...SAMPLES[step.name], [param]: hostile });
          assert.ok(!script.includes(hostile), `${step.name}.${param}: the value appears as text`);
          assert.ok(decodedParams(script).includes(hostile), `${step.name}.${param}: the value does not decode back`);
          assert.equal(unbalanced(script), undefined, `${step.name}.${param} = ${JSON.stringify(hostile)}`);
        }
      }
    }
  });

  test('the -EncodedCommand line stays under the 32,767-character Windows limit', () => {
    for (const [name, values] of Object.entries(SAMPLES)) {
      const encoded = Buffer.from(render(name, values), 'utf16le').toString('base64');
      const line = `powershell -NoProfile -NonInteractive -EncodedCommand ${encoded}`;
      assert.ok(line.length < 32_767, `${name}: ${line.length} characters`);
    }
  });
});
