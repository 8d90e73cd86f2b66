/**
 * A writer for the "newc" cpio format, the one the kernel unpacks as an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst). The kernel creates no parent
 * directories, so callers add each directory before what it holds; `CpioArchive` does that.
 * Archives can be concatenated: the kernel unpacks one after the other, which lets the guest
 * combine a cached base archive with a small one made for each run.
 */

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

interface Entry {
  path: string;
  mode: number;
  data: Uint8Array;
}

export class CpioArchive {
  private readonly entries: Entry[] = [];
  private readonly seen = new Set<string>();

  /** Adds a directory and any missing parents. Paths are absolute guest paths. */
  directory(path: string, permissions = 0o755): this {
    const clean = normalise(path);
    if (clean === '' || this.seen.has(clean)) return this;
    const parent = clean.includes('/') ? clean.slice(0, clean.lastIndexOf('/')) : '';
    if (parent) this.directory(`/${parent}`);
    this.seen.add(clean);
    this.entries.push({ path: clean, mode: S_IFDIR | permissions, data: new Uint8Array() });
    return this;
  }

  file(path: string, data: Uint8Array | string, permissions = 0o644): this {
    return this.add(path, S_IFREG | permissions, typeof data === 'string' ? Buffer.from(data) : data);
  }

  symlink(path: string, target: string): this {
    return this.add(path, S_IFLNK | 0o777, Buffer.from(target));
  }

  has(path: string): boolean {
    return this.seen.has(normalise(path));
  }

  private add(path: string, mode: number, data: Uint8Array): this {
    const clean = normalise(path);
    if (this.seen.has(clean)) return this;
    const parent = clean.includes('/') ? clean.slice(0, clean.lastIndexOf('/')) : '';
    if (parent) this.directory(`/${parent}`);
    this.seen.add(clean);
    this.entries.push({ path: clean, mode, data });
    return this;
  }

  /** The archive's bytes, ending with the TRAILER!!! entry. */
  toBuffer(): Buffer {
    const chunks: Buffer[] = [];
    let inode = 1;
    for (const entry of [...this.entries, { path: 'TRAILER!!!', mode: 0, data: new Uint8Array() }]) {
      chunks.push(header(entry, entry.path === 'TRAILER!!!' ? 0 : inode++));
      const name = Buffer.from(`${entry.path}\0`);
      chunks.push(name, padding(110 + name.length));
      chunks.push(Buffer.from(entry.data), padding(entry.data.length));
    }
    return Buffer.concat(chunks);
  }
}

function normalise(path: string): string {
  return path.replace(/^\/+/, '').replace(/\/+$/, '').replace(/\/+/g, '/');
}

function header(entry: Entry, inode: number): Buffer {
  const fields = [
    inode,
    entry.mode,
    0, // uid
    0, // gid
    (entry.mode & S_IFDIR) === S_IFDIR ? 2 : 1, // nlink
    0, // mtime: fixed, so the same input gives the same archive
    entry.data.length,
    0, // devmajor
    0, // devminor
    0, // rdevmajor
    0, // rdevminor
    Buffer.byteLength(`${entry.path}\0`),
    0, // check
  ];
  return Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`, 'ascii');
}

/** newc pads the header+name and the data each to a multiple of four bytes. */
function padding(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}
