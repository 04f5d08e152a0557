/**
 * Which targets a library step may run on. A manifest declares `platforms: [linux|windows|any]`;
 * a target's platform comes from how the step would reach it: a winrm target runs PowerShell (or
 * cmd), so it is Windows whatever its os_type; an ssh target is Windows when its os_type says so
 * (OpenSSH on Windows), Linux when its os_type is linux or other (other is "not said": an SSH
 * login's POSIX shell is the best guess), and neither for unix, macos and network devices, which
 * are known not to be Linux — only steps declared `any` run there. http targets have no shell.
 */
import { ValidationError } from '../../errors.ts';

/** The target fields the check reads. */
interface PlatformTarget {
  id: number;
  name: string;
  os_type: string;
  protocol: string;
}

/** `linux`, `windows`, or undefined when only `any` steps can run on the target. */
function targetPlatform(target: Pick<PlatformTarget, 'os_type' | 'protocol'>): 'linux' | 'windows' | undefined {
  if (target.protocol === 'winrm') {
    return 'windows';
  }
  if (target.protocol !== 'ssh') {
    return undefined;
  }
  if (target.os_type === 'windows') {
    return 'windows';
  }
  return ['linux', 'other'].includes(target.os_type) ? 'linux' : undefined;
}

/** Whether a step declared for `platforms` may run on `target`. */
function runsOn(platforms: readonly string[], target: Pick<PlatformTarget, 'os_type' | 'protocol'>): boolean {
  const platform = targetPlatform(target);
  return platforms.includes('any') || (platform !== undefined && platforms.includes(platform));
}

/** Why `target` cannot run a step of `platforms` (for error messages). */
function mismatch(platforms: readonly string[], target: PlatformTarget): string {
  const platform = targetPlatform(target);
  const is = platform ? `a ${platform} target` : 'neither a linux nor a windows target';
  return `target ${target.name} (${target.id}, os_type ${target.os_type}, protocol ${target.protocol}) is ${is}; the step runs on ${platforms.join(', ')}`;
}

/** Library metadata frozen into an expanded step (see expandStep). */
interface ExpandedLibrary {
  id: string;
  version: string;
  step: string;
  platforms?: string[];
}

/**
 * Checks every expanded library step of a run against every target of the run: a 400 naming the
 * job step and the target that cannot run it. Steps expanded before platforms were recorded pass.
 */
export function checkRunPlatforms(steps: ReadonlyArray<Record<string, unknown>>, targets: readonly PlatformTarget[], field = 'target_ids'): void {
  for (const step of steps) {
    const library = step.library as ExpandedLibrary | undefined;
    if (!library?.platforms) {
      continue;
    }
    const bad = targets.find((t) => !runsOn(library.platforms ?? [], t));
    if (bad) {
      const name = String(step.name).replace(/__\d+$/, '');
      throw new ValidationError(`${field}: step "${name}" (${library.id}/${library.step}) cannot run there: ${mismatch(library.platforms, bad)}`, field, {
        details: { step: name, library: library.id, library_step: library.step, target_id: bad.id, platforms: library.platforms },
      });
    }
  }
}
