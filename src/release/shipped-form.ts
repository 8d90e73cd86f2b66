import type { UpdatePackage } from '../update/format.js';

/**
 * An update as the package ships it. Each update create makes carries the core module built
 * for the kernel (2.7 MB) and its units' whole post objects (for inspection; nothing on the
 * target reads them): 3.6 MB on median, 2.3 GB for the 620 updates of 6.1.170 -> 6.1.176, which
 * dpkg-deb took 9 minutes to compress. The package carries the core module once, in
 * its first update (`coreModule`, given for that one only): `tsplice upgrade` loads it from
 * there (upgrade.ts), as `tsplice apply` of that file does. The maintainer's cache keeps the
 * whole updates.
 */
export function shippedForm(update: UpdatePackage, coreModule: string | undefined): UpdatePackage {
  const shipped: UpdatePackage = { ...update, postObjects: [] };
  delete shipped.coreModule;
  return coreModule === undefined ? shipped : { ...shipped, coreModule };
}
