/**
 * Header hunks that are the other half of a file's own change of data. Choosing header hunks
 * by what the unit needs to compile never keeps a hunk that only removes something: removing
 * a member is never needed to compile. But a fix that moves a field into flag bits
 * (net/packet/af_packet.c: `po->running` becomes bit PACKET_SOCK_RUNNING of `po->flags`) needs
 * its new enum constant to compile and removes the old member in another hunk; with the
 * constant alone the update would compile, pass the layout check, and make new code read bits
 * that live sockets never had set. So a hunk is kept too when it removes a name the file's own
 * diff stops using: then the layout check sees the member go, and refuses.
 */

/** Words of C and of the kernel's basic types, which say nothing about a particular change. */
const COMMON = new Set([
  'if', 'else', 'for', 'while', 'do', 'switch', 'case', 'default', 'break', 'continue', 'return', 'goto', 'sizeof', 'typeof',
  'int', 'unsigned', 'signed', 'long', 'short', 'char', 'void', 'bool', 'float', 'double', 'struct', 'union', 'enum', 'const',
  'static', 'inline', 'extern', 'volatile', 'register', 'typedef', 'true', 'false', 'NULL', 'u8', 'u16', 'u32', 'u64',
  's8', 's16', 's32', 's64', '__u8', '__u16', '__u32', '__u64', '__be16', '__be32', '__le16', '__le32', 'size_t',
  'define', 'include', 'ifdef', 'ifndef', 'endif', 'undef',
]);

/** Identifiers of some diff lines, comments and strings left out. */
function identifiers(lines: readonly string[]): Set<string> {
  const text = lines
    .map((l) => l.slice(1))
    .join('\n')
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/\/\/.*$/gm, ' ')
    .replace(/"(?:[^"\\\n]|\\.)*"/g, ' ');
  const found = new Set<string>();
  for (const m of text.matchAll(/[A-Za-z_]\w*/g)) if (m[0].length >= 3 && !COMMON.has(m[0])) found.add(m[0]);
  return found;
}

/** Names some lines of a diff remove that its added lines do not name again. */
export function removedNames(lines: readonly string[]): Set<string> {
  const added = identifiers(lines.filter((l) => l.startsWith('+') && !l.startsWith('+++')));
  const removed = identifiers(lines.filter((l) => l.startsWith('-') && !l.startsWith('---')));
  return new Set([...removed].filter((n) => !added.has(n)));
}

/** The names a hunk removes that `stopped` (what the file's own diff stops using) holds. */
export function sharedRemovals(hunkLines: readonly string[], stopped: ReadonlySet<string>): string[] {
  return [...removedNames(hunkLines)].filter((n) => stopped.has(n)).sort();
}
