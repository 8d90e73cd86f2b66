#!/usr/bin/env node
// The installed entry point: the compiled CLI lives in dist/ (npm run build).
import '../dist/src/cli/main.js';
