import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { filesFingerprint, modulesReachedFrom } from './code-fingerprint.js';

const work = mkdtempSync(join(tmpdir(), 'tsplice-code-fingerprint-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('modulesReachedFrom', () => {
  it('follows relative imports, static and dynamic, in either quotes, once each', () => {
    const dir = join(work, 'mods');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    // Double quotes here: scripts/run-tests.js reads single-quoted imports of test files as their own.
    writeFileSync(join(dir, 'a.js'), 'import { b } from "./sub/b.js";\nimport { x } from "node:fs";\nconst c = await import("./c.js");\n');
    writeFileSync(join(dir, 'sub', 'b.js'), 'export { a } from "../a.js";\n');
    writeFileSync(join(dir, 'c.js'), '');
    writeFileSync(join(dir, 'unused.js'), '');
    assert.deepEqual(modulesReachedFrom(join(dir, 'a.js')), [join(dir, 'a.js'), join(dir, 'c.js'), join(dir, 'sub', 'b.js')]);
  });
});

describe('filesFingerprint', () => {
  it("changes with a file's bytes and with its name, not with a file it was not given", () => {
    const dir = join(work, 'fp');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'a.js'), 'one');
    writeFileSync(join(dir, 'b.js'), 'one');
    writeFileSync(join(dir, 'other.js'), 'x');
    const first = filesFingerprint([join(dir, 'a.js')]);
    writeFileSync(join(dir, 'other.js'), 'y');
    assert.equal(filesFingerprint([join(dir, 'a.js')]), first);
    assert.notEqual(filesFingerprint([join(dir, 'b.js')]), first);
    writeFileSync(join(dir, 'a.js'), 'two');
    assert.notEqual(filesFingerprint([join(dir, 'a.js')]), first);
  });
});
