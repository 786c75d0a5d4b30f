#!/usr/bin/env node
// The CLI lives in src/main.ts, compiled to dist/ by `npm install` (postinstall) or `npm run build`.
import { main } from '../dist/main.js';
main(process.argv.slice(2)).then((code) => { if (typeof code === 'number') process.exitCode = code; });
