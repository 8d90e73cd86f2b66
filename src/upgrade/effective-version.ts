/**
 * The effective version of the running kernel: the Debian version whose fixes it runs. The
 * kernel is booted at the manifest's `from`; once every update the installed package ships is
 * applied (a part of a loadable module may still wait for the module to load: the kernel
 * patches it as it loads, so the fix is in force wherever the code can run), it runs `to`'s
 * fixes and says so. Files the manifest marks needs-reboot or needs-new-code do not hold the
 * version back: the release shipped them as not live, and `status` lists them with the reasons.
 */

/** An update as the kernel holds it, for the rule: its state and its parts that were refused. */
export interface HeldUpdate {
  state: 'staged' | 'applied' | 'reverted';
  /** Parts of loadable modules waiting for their module to load (`name [module]`). */
  waiting: string[];
  /** Parts the kernel refused when their module loaded (`name [module]: reason`). */
  refused: string[];
}

export interface EffectiveVersion {
  /** The Debian version in /proc/version (undefined: not a Debian kernel). */
  booted?: string;
  /** What the kernel runs the fixes of: `to` when raised, else `booted`. */
  effective?: string;
  raised: boolean;
  /** Why it is not raised, one line each (empty when it is, or when no package is installed). */
  missing: string[];
}

/**
 * The Debian version in /proc/version's text: `… #1 SMP PREEMPT_DYNAMIC Debian 6.1.170-3 (…)`.
 * Taken from the version part after `#N`: the compiler's `(Debian 12.2.0-14)` comes before it.
 */
export function debianVersionOf(procVersion: string): string | undefined {
  return /#\d+ .*\bDebian (\d[A-Za-z0-9.+~:-]*)/.exec(procVersion)?.[1];
}

export function effectiveVersion(manifest: { from: string; to: string; updates: readonly { id: string }[] } | undefined, booted: string | undefined, held: ReadonlyMap<string, HeldUpdate>): EffectiveVersion {
  const notRaised = (missing: string[]): EffectiveVersion => ({ ...(booted !== undefined ? { booted, effective: booted } : {}), raised: false, missing });
  if (!manifest) return notRaised([]);
  if (booted !== manifest.from) return notRaised([`the installed updates are for Debian ${manifest.from}, but the kernel was built as ${booted ?? 'an unknown version'}`]);
  const missing: string[] = [];
  for (const { id } of manifest.updates) {
    const u = held.get(id);
    if (!u) missing.push(`${id} is not applied`);
    else if (u.state !== 'applied') missing.push(`${id} is ${u.state}, not applied`);
    else for (const part of u.refused) missing.push(`${id}: the kernel refused ${part}`);
  }
  if (missing.length > 0) return notRaised(missing);
  return { booted, effective: manifest.to, raised: manifest.to !== booted, missing };
}

/**
 * `uname -v` with the effective version: the Debian version and its build date become
 * `Debian TO (tsplice; booted FROM)`, so a reader of the one line sees both. Unchanged when the
 * version is not raised.
 */
export function effectiveVersionLine(versionLine: string, version: EffectiveVersion): string {
  if (!version.raised || version.effective === undefined) return versionLine;
  return versionLine.replace(/\bDebian \d[A-Za-z0-9.+~:-]*( \([^)]*\))?/, `Debian ${version.effective} (tsplice; booted ${version.booted ?? 'unknown'})`);
}
