/**
 * Resolving the `--kernel` option shared by the lab commands: an explicit release, or the
 * default lab kernel (the oldest complete 6.1 release in the archive).
 */
import type { Log } from '../host/log.js';
import { defaultRelease } from './packages.js';

export async function chooseRelease(requested: string | undefined, log: Log): Promise<string> {
  return requested ?? (await defaultRelease(log));
}
