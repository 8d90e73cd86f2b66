/**
 * A changed constant table that only the unit's own functions read is carried as the update's
 * own copy, with every function that refers to it (read-only-copies.ts); a table anything else
 * can reach stays refused as a changed initial value.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compilePair } from './fixtures.js';
import { diffObjects, diffReport, type DiffReport } from './pipeline.js';

function diff(pre: string, post: string): DiffReport {
  const pair = compilePair(pre, post);
  return diffReport(diffObjects(pair.pre, pair.post));
}

const QUIRKS = (rows: string, extra = ''): string => `
struct quirk { unsigned short vendor, product; unsigned flags; };
static const struct quirk usb_quirk_list[] = {
${rows}
	{ 0, 0, 0 }
};
${extra}
__attribute__((noinline)) unsigned quirk_flags(unsigned short v, unsigned short p)
{
	const struct quirk *q;
	for (q = usb_quirk_list; q->vendor; q++)
		if (q->vendor == v && q->product == p)
			return q->flags;
	return 0;
}
__attribute__((noinline)) int quirk_count(void)
{
	return sizeof(usb_quirk_list) / sizeof(usb_quirk_list[0]);
}
int unrelated(int x) { return x * 3; }
`;
const OLD_ROWS = '\t{ 0x0bda, 0x8153, 1 },\n\t{ 0x04e8, 0x6860, 2 },\n\t{ 0x1d6b, 0x0003, 8 },\n';
const NEW_ROWS = `${OLD_ROWS}\t{ 0x2109, 0x0715, 4 },\n`;

describe('changed read-only data', () => {
  it('carries its own copy of a quirk table only the unit\'s code reads, and every function that reads it', () => {
    const r = diff(QUIRKS(OLD_ROWS), QUIRKS(NEW_ROWS));
    assert.deepEqual(r.refused, []);
    assert.deepEqual(r.data, [{ name: 'usb_quirk_list', status: 'copy' }]);
    // quirk_flags' code is the same, but it reads the table by its address: carried too.
    assert.deepEqual(r.functions.map((f) => `${f.name}:${f.status}`).sort(), ['quirk_count:changed', 'quirk_flags:changed']);
    assert.equal(r.ok, true);
  });

  it('refuses a table that data points to, as the running kernel keeps that pointer', () => {
    const registered = 'struct driver { const struct quirk *table; };\nstruct driver quirk_driver = { .table = usb_quirk_list };\n';
    const r = diff(QUIRKS(OLD_ROWS, registered), QUIRKS(NEW_ROWS, registered));
    assert.equal(r.ok, false);
    assert.deepEqual(r.refused.map((x) => [x.kind, x.symbol]), [['changed-initializer', 'usb_quirk_list']]);
    assert.match(r.refused[0]?.reason ?? '', /the update cannot carry its own \(data refers to it \(from \.data\.quirk_driver\)\)/);
  });

  it('refuses a table with a second name (MODULE_DEVICE_TABLE\'s alias), a global table, and one init code read', () => {
    const alias = 'extern const struct quirk __mod_usb__quirks_device_table[] __attribute__((unused, alias("usb_quirk_list")));\n';
    const aliased = diff(QUIRKS(OLD_ROWS, alias), QUIRKS(NEW_ROWS, alias));
    assert.deepEqual(aliased.refused.map((x) => [x.kind, x.symbol]).sort(), [['changed-initializer', '__mod_usb__quirks_device_table'], ['changed-initializer', 'usb_quirk_list']]);
    const global = (rows: string) => QUIRKS(rows).replace('static const struct quirk usb_quirk_list', 'const struct quirk usb_quirk_list');
    assert.deepEqual(diff(global(OLD_ROWS), global(NEW_ROWS)).refused.map((x) => x.kind), ['changed-initializer']);
    const init = '__attribute__((section(".init.text"), used, noinline)) int quirk_setup(int i) { return usb_quirk_list[i].flags; }\n';
    const atInit = diff(`${QUIRKS(OLD_ROWS)}${init}`, `${QUIRKS(NEW_ROWS)}${init}`);
    assert.equal(atInit.ok, false);
    assert.ok(atInit.refused.some((x) => x.symbol === 'usb_quirk_list'));
  });

  it('leaves writable data with a changed initial value refused: its running copy is live state', () => {
    const writable = (rows: string) => QUIRKS(rows).replace('static const struct quirk usb_quirk_list', 'static struct quirk usb_quirk_list');
    const r = diff(writable(OLD_ROWS), writable(NEW_ROWS));
    assert.deepEqual(r.refused.map((x) => [x.kind, x.symbol]), [['changed-initializer', 'usb_quirk_list']]);
  });
});
