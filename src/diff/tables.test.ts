/**
 * Tables without symbols of their own (tables.ts), on objects the host gcc compiles at test
 * time: a PCI quirk added to `.pci_fixup_header` is refused by the table's name; an unchanged
 * table with a changed function beside it is not.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePair } from './fixtures.js';
import { diffObjects, diffReport } from './pipeline.js';

const quirk = (device: string, line: number): string =>
  `static const struct pci_fixup __fixup_${line} __attribute__((used, section(".pci_fixup_header"), aligned(8))) = { 0x8086, ${device}, quirk_igfx };`;
const UNIT = `
struct pci_fixup { unsigned short vendor, device; void (*hook)(void *); };
extern void sink(int);
__attribute__((noinline)) void quirk_igfx(void *dev) { sink(1); }
__attribute__((noinline)) int probe(int x) { sink(x); return x; }
${quirk('0x2a42', 1)}
`;

describe('tables the kernel keeps its own copy of', () => {
  it('refuses a PCI quirk added to .pci_fixup_header, naming the table', () => {
    const pair = compilePair(UNIT, `${UNIT}\n${quirk('0x29b2', 2)}\n`);
    const report = diffReport(diffObjects(pair.pre, pair.post));
    assert.deepEqual(report.refused.map((r) => r.section), ['.pci_fixup_header']);
    assert.deepEqual(report.refused.map((r) => r.kind), ['changed-table']);
    assert.match(report.refused[0]?.reason ?? '', /^changed table \(size 16 -> 32\).*needs a hook/);
  });

  it('lets an unchanged table be when a function beside it changes', () => {
    const pair = compilePair(UNIT, UNIT.replace('sink(x); return x;', 'sink(x + 1); return x;'));
    const report = diffReport(diffObjects(pair.pre, pair.post));
    assert.deepEqual(report.refused, []);
    assert.deepEqual(report.functions.map((f) => f.name), ['probe']);
  });
});
