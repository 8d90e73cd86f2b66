/** Where the corpus keeps its adapted patches (src/release/adapted.ts reads such a folder). */
import { join } from 'node:path';
import { projectRoot } from '../../src/host/project.js';

export const ADAPTED_DIR = join(projectRoot(), 'test', 'corpus', 'adapted');
