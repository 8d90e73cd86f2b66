/**
 * What a header change changes, on small texts: the names whose definition changed, the
 * includes added or removed, the changes no name carries. No kernel tree needed.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { headerChange } from './header-change.js';

describe('what a header change changes', () => {
  it('a whitespace-only macro change and a comment change change nothing', () => {
    const pre = '#define X86_FEATURE_ZEN\t\t\t(7*32+28) /* "" CPU based on Zen microarchitecture */\n';
    const post = '#define X86_FEATURE_ZEN\t\t\t( 7*32+28) /* "" Generic flag for all Zen and newer */\n#define X86_FEATURE_ZEN1 (11*32+31)\n';
    assert.deepEqual(headerChange('cpufeatures.h', pre, post).names, ['X86_FEATURE_ZEN1']);
  });

  it('an object-like and a function-like macro differ, though their tokens are the same', () => {
    assert.deepEqual(headerChange('x.h', '#define F (a)\n', '#define F(a)\n').names, ['F']);
  });

  it('an item moved under another conditional is changed', () => {
    const pre = '#ifdef CONFIG_SYSFS\nextern void destroy_params(int n);\n#endif\n';
    const post = '#ifdef CONFIG_MODULES\nextern void destroy_params(int n);\n#endif\n';
    assert.deepEqual(headerChange('x.h', pre, post).names, ['destroy_params']);
  });

  it('an enum gaining an enumerator: it and the ones after it, and the tag', () => {
    const pre = 'enum flags { FLAG_A, FLAG_B, FLAG_C };\n';
    assert.deepEqual(headerChange('x.h', pre, 'enum flags { FLAG_A, FLAG_B, FLAG_C, FLAG_D };\n').names, ['FLAG_D', 'enum flags']);
    assert.deepEqual(headerChange('x.h', pre, 'enum flags { FLAG_A, FLAG_NEW, FLAG_B, FLAG_C };\n').names, ['FLAG_B', 'FLAG_C', 'FLAG_NEW', 'enum flags']);
  });

  it('includes added and removed are listed; code emitted in every includer is a change no name carries', () => {
    const change = headerChange('x.h', '#include <linux/list.h>\nint x;\n', '#include <linux/bitops.h>\nint x = 1;\n');
    assert.deepEqual(change.includesAdded, ['<linux/bitops.h>']);
    assert.deepEqual(change.includesRemoved, ['<linux/list.h>']);
    assert.deepEqual(change.unnamed, ['changed at line 2: int x = 1 ;']);
  });
});
