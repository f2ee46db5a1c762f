import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/spawn.js';

/**
 * The dependency rule of docs/ARCHITECTURE.md, checked on every import in src/ (static, dynamic
 * and re-exports, type-only included: a type import still couples the layers):
 *
 *   cli → {app, rehearse} → {ingress, mcp, agent, console} → operations → dispatch → buffer
 *       → {catalog, stripe}
 *
 * A module may import its own layer and any layer to its right, never one to its left, and never
 * a sibling in the same braces. config, errors, logger, metrics, http-guard, html, refusal-log
 * and money are shared: every layer may import them, and they import only each other and the
 * bottom layers (buffer, catalog, stripe).
 */
const SRC = path.join(REPO_ROOT, 'src');

const RANK: Record<string, number> = {
  cli: 7,
  app: 6,
  rehearse: 6,
  ingress: 5,
  mcp: 5,
  agent: 5,
  console: 5,
  operations: 4,
  dispatch: 3,
  buffer: 2,
  catalog: 1,
  stripe: 1,
};
const SHARED = new Set([
  'config',
  'errors',
  'logger',
  'metrics',
  'http-guard',
  'html',
  'refusal-log',
  'money',
]);
/** What shared modules may read: the bottom layers, below every door and operation. */
const SHARED_MAY_IMPORT = new Set(['buffer', 'catalog', 'stripe']);

/** The layer of a file under src/, by its first path segment. */
export function layerOf(file: string): string {
  const rel = path.relative(SRC, file).split(path.sep);
  const first = rel[0]!.replace(/\.ts$/, '');
  if (rel.length === 1) {
    if (first === 'cli') return 'cli';
    if (first === 'app' || first === 'http-app') return 'app';
    if (SHARED.has(first)) return first;
  }
  if (first === 'compose') return 'app';
  return first;
}

/** `from '…'`, `import '…'`, `import('…')` and `export … from '…'` specifiers of one file. */
export function importsOf(source: string): string[] {
  const specifiers: string[] = [];
  const patterns = [
    /\bfrom\s+['"]([^'"]+)['"]/g,
    /\bimport\s+['"]([^'"]+)['"]/g,
    /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g,
  ];
  for (const pattern of patterns) {
    for (const match of source.matchAll(pattern)) specifiers.push(match[1]!);
  }
  return specifiers;
}

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** Why `from` may not import `to`, or null when the rule allows it. */
export function violation(from: string, to: string): string | null {
  if (from === to) return null;
  const shared = (layer: string) => SHARED.has(layer);
  if (shared(to)) return null;
  if (shared(from)) {
    return SHARED_MAY_IMPORT.has(to)
      ? null
      : `${from} is shared: it may import only buffer, catalog, stripe and the other shared modules`;
  }
  const a = RANK[from];
  const b = RANK[to];
  if (a === undefined) return `${from} is not a layer the rule knows: add it to the rule first`;
  if (b === undefined) return `${to} is not a layer the rule knows: add it to the rule first`;
  if (b > a) return `${from} sits below ${to}: dependencies point down only`;
  if (b === a) return `${from} and ${to} are siblings: neither imports the other`;
  return null;
}

describe('the dependency rule (docs/ARCHITECTURE.md)', () => {
  it('holds for every import in src/', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of sourceFiles(SRC)) {
      const from = layerOf(file);
      for (const specifier of importsOf(fs.readFileSync(file, 'utf8'))) {
        if (!specifier.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts'));
        const to = layerOf(target);
        checked++;
        const why = violation(from, to);
        if (why) broken.push(`${path.relative(REPO_ROOT, file)} → ${specifier}: ${why}`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(broken).toEqual([]);
  });

  it('would catch the imports it forbids', () => {
    // mcp/ once imported agent/ (approvals, dispatch sinks): siblings.
    expect(violation('mcp', 'agent')).toMatch(/siblings/);
    expect(violation('operations', 'mcp')).toMatch(/down only/);
    expect(violation('buffer', 'operations')).toMatch(/down only/);
    expect(violation('operations', 'ingress')).toMatch(/down only/);
    expect(violation('config', 'mcp')).toMatch(/shared/);
    expect(violation('money', 'console')).toMatch(/shared/);
    expect(violation('catalog', 'money')).toBeNull();
    expect(layerOf(path.join(SRC, 'money.ts'))).toBe('money');
    expect(violation('console', 'operations')).toBeNull();
    expect(violation('cli', 'app')).toBeNull();
    expect(violation('agent', 'dispatch')).toBeNull();
    expect(layerOf(path.join(SRC, 'console', 'page.ts'))).toBe('console');
    expect(layerOf(path.join(SRC, 'compose', 'services.ts'))).toBe('app');
    // A store adapter's folder (buffer/sqlite/, buffer/redis/) is part of the buffer layer.
    expect(layerOf(path.join(SRC, 'buffer', 'sqlite', 'store.ts'))).toBe('buffer');
    expect(
      importsOf(
        "import type { A } from './a.js';\nexport * from '../b.js';\nconst c = await import('./c.js');\nimport './d.js';",
      ),
    ).toEqual(['./a.js', '../b.js', './d.js', './c.js']);
  });
});
