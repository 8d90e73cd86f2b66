/**
 * What an operator adds to a machine to subscribe it to tsplice's repository, in both forms apt
 * reads: the deb822 `.sources` file (`/etc/apt/sources.list.d/tsplice.sources`, the form
 * Debian now prefers) and the one-line form of `sources.list`. Either way the key is named with
 * Signed-By, so it vouches for this repository alone, not for every source on the machine.
 */

export interface AptSource {
  /** The repository's root: `https://updates.example.org/tsplice`, `file:///srv/tsplice`. */
  uri: string;
  suite: string;
  components: readonly string[];
  /** The keyring file: `/etc/apt/keyrings/tsplice.gpg` (binary) or `.asc` (armored). */
  signedBy: string;
  /** Limits the architectures apt fetches; all of the machine's when absent. */
  architectures?: readonly string[];
}

/** A `.sources` file's text: one deb822 stanza. */
export function aptSourcesFile(source: AptSource): string {
  return [
    'Types: deb',
    `URIs: ${source.uri}`,
    `Suites: ${source.suite}`,
    `Components: ${source.components.join(' ')}`,
    ...(source.architectures ? [`Architectures: ${source.architectures.join(' ')}`] : []),
    `Signed-By: ${source.signedBy}`,
    '',
  ].join('\n');
}

/** The one-line form: `deb [signed-by=KEYRING] URI SUITE COMPONENT...`. */
export function aptSourcesLine(source: AptSource): string {
  const options = [`signed-by=${source.signedBy}`, ...(source.architectures ? [`arch=${source.architectures.join(',')}`] : [])];
  return `deb [${options.join(' ')}] ${source.uri} ${source.suite} ${source.components.join(' ')}`;
}
