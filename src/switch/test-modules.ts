/**
 * For the core module's guest tests (core-module.test.ts, core-parts.test.ts): tsplice_core and
 * the two test modules of kmod/tests (tsplice_target holds the functions to replace,
 * tsplice_replacement the new code), built for the lab kernel from a clean copy of kmod/ and
 * put in `share`/modules, where the guest script insmods them.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { LabKernel } from '../debian/fetch.js';
import { projectRoot } from '../host/project.js';
import { buildExternalModule, buildModule } from '../kbuild/external-module.js';
import { coreModuleSources } from '../update/core-module-build.js';

export interface TestModules {
  core: string;
  target: string;
  replacement: string;
}

/** Builds the three modules under `share`/build and copies them to `share`/modules. */
export async function buildTestModules(kernel: LabKernel, share: string): Promise<TestModules> {
  const build = join(share, 'build');
  cpSync(join(projectRoot(), 'kmod'), build, { recursive: true, filter: (src) => !/\.(o|ko|mod|cmd|mod\.c)$|Module\.symvers|modules\.order/.test(src) });
  const core = join(build, 'tsplice_core.ko');
  writeFileSync(core, await buildExternalModule(kernel.headersDir, 'tsplice_core', coreModuleSources(build)));
  const built: TestModules = {
    core,
    target: await buildModule(kernel, join(build, 'tests', 'tsplice_target'), 'tsplice_target'),
    replacement: await buildModule(kernel, join(build, 'tests', 'tsplice_replacement'), 'tsplice_replacement'),
  };
  mkdirSync(join(share, 'modules'));
  for (const ko of Object.values(built)) cpSync(ko, join(share, 'modules', basename(ko)));
  return built;
}
