// `node --import ./hook-register.mjs …/conformance/dist/index.js …` runs the MCP conformance
// suite (which imports fs.globSync, new in Node 22) on Node 20.
import { register } from 'node:module';

register('./hooks.mjs', import.meta.url);
