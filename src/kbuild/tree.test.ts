import assert from 'node:assert/strict';
import { it } from 'node:test';
import { makeVariablesFrom } from './tree.js';

it('takes the compiler and release from .kernelvariables', () => {
  const text = 'override ARCH = x86\noverride KERNELRELEASE = 6.1.0-47-amd64\nCCACHE = ccache\nCC = $(if $(DEBIAN_KERNEL_USE_CCACHE),$(CCACHE)) $(CROSS_COMPILE)gcc-12\n';
  assert.deepEqual(makeVariablesFrom(text, 'ignored'), [
    'ARCH=x86',
    'KERNELRELEASE=6.1.0-47-amd64',
    'CC=gcc-12',
    'HOSTCC=gcc-12',
    'KCFLAGS=-ffunction-sections -fdata-sections',
  ]);
});
