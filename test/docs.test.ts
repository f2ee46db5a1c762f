/**
 * The docs stay in step with the code where a test can tell: the README stays short and its links
 * and the guide's resolve; the README's Commands table names
 * every command `--help` lists (and every `events` sub-command), and docs/MCP.md's tool table
 * lists exactly the tools the server registers, with their count in words where it is given.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TOOLS } from '../src/mcp/tools.js';
import { REPO_ROOT, runCli } from './helpers/spawn.js';

const read = (file: string) => fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');

/** The command names in a commander help text's "Commands:" section (help itself left out). */
function helpCommands(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][a-z-]*)/gm)]
    .map((m) => m[1]!)
    .filter((name) => name !== 'help');
}

/** The first cell of each row of the README's Commands table, e.g. `events list`. */
function readmeCommands(): string[] {
  const section = read('README.md')
    .split(/^## Commands$/m)[1]!
    .split(/^## /m)[0]!;
  return [...section.matchAll(/^\| `([a-z][a-z -]*?)(?: <[^`]*>)?`/gm)].map((m) => m[1]!.trim());
}

describe('README and docs match the code', () => {
  it('the Commands table names every command and every events and people sub-command', async () => {
    const top = await runCli(['--help']);
    const groups = ['events', 'people'];
    const listed = new Set(readmeCommands());
    const subs = await Promise.all(
      groups.map(async (g) =>
        helpCommands((await runCli([g, '--help'])).stdout).map((c) => `${g} ${c}`),
      ),
    );
    const missing = [
      ...helpCommands(top.stdout).filter((c) => !groups.includes(c) && !listed.has(c)),
      ...subs.flat().filter((c) => !listed.has(c)),
    ];
    expect(missing, 'commands --help lists that README.md does not').toEqual([]);
  });

  it('the README stays short: at most 250 lines, prose lines at most 120 characters', () => {
    const lines = read('README.md').split('\n');
    expect(lines.length).toBeLessThanOrEqual(250);
    let code = false;
    const long = lines.filter((line) => {
      if (line.startsWith('```')) code = !code;
      return !code && !line.startsWith('|') && line.length > 120;
    });
    expect(long, 'prose lines over 120 characters').toEqual([]);
  });

  it('every relative link of the README and the guide names a file that exists', () => {
    for (const file of ['README.md', 'docs/GUIDE.md']) {
      const dir = path.dirname(path.join(REPO_ROOT, file));
      for (const m of read(file).matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (/^[a-z]+:/.test(m[1]!)) continue;
        expect(fs.existsSync(path.join(dir, m[1]!)), `${file} links to ${m[1]}`).toBe(true);
      }
    }
  });

  it("docs/MCP.md's tool table lists exactly the registered tools, and counts them right", () => {
    const mcp = read('docs/MCP.md');
    const documented = [...mcp.matchAll(/^\| `([a-z_]+)` +\|/gm)].map((m) => m[1]!);
    const tools = Object.keys(TOOLS);
    expect(documented.filter((name) => tools.includes(name)).sort()).toEqual([...tools].sort());
    const words = [
      '',
      'one',
      'two',
      'three',
      'four',
      'five',
      'six',
      'seven',
      'eight',
      'nine',
      'ten',
      'eleven',
      'twelve',
      'thirteen',
      'fourteen',
      'fifteen',
    ];
    for (const m of mcp.matchAll(/\ball ([a-z]+) tools\b/g)) {
      expect(m[1], `"${m[0]}" in docs/MCP.md`).toBe(words[tools.length]);
    }
  });
});
