import fs from 'node:fs';
import { z } from 'zod';
import type { EventOverrides } from '../catalog/catalog.js';
import { TOOL_NAME } from '../catalog/tool.js';
import { ConfigError } from '../errors.js';

/**
 * The `--config file.json` schema (docs/ARCHITECTURE.md "Public names"): catalog overrides, where decided tool
 * calls go, and which need a person's approval. Validated once; an error names the JSON path.
 */
const eventOverride = z.union([
  z.literal(false),
  z
    .object({
      tool: z.string().regex(TOOL_NAME, 'a tool name is 1–64 letters, digits, _ or -').optional(),
      description: z.string().min(1).max(1024).optional(),
    })
    .strict(),
]);

const dispatch = z.discriminatedUnion('type', [
  z.object({ type: z.literal('record') }).strict(),
  z
    .object({
      type: z.literal('http'),
      url: z.url({ protocol: /^https?$/, error: 'an http(s) URL' }),
      secret: z.string().min(16, 'at least 16 characters'),
    })
    .strict(),
  z.object({ type: z.literal('module'), path: z.string().min(1) }).strict(),
]);

export const configFileSchema = z
  .object({
    events: z
      .record(
        z.string().regex(/^[a-z0-9_.]+$/, 'an event type such as invoice.paid'),
        eventOverride,
      )
      .optional(),
    dispatch: dispatch.optional(),
    approval: z
      .object({
        tools: z.array(z.string().regex(TOOL_NAME)).optional(),
        amount_over: z.number().int().min(0).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type ConfigFile = z.infer<typeof configFileSchema>;

function jsonPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) =>
      typeof key === 'number'
        ? `${out}[${key}]`
        : /^[A-Za-z_$][\w$]*$/.test(String(key))
          ? `${out}.${String(key)}`
          : `${out}[${JSON.stringify(String(key))}]`,
    '$',
  );
}

export function parseConfigFile(text: string, file: string): ConfigFile {
  const setting = `--config ${file}`;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(
      setting,
      `is not valid JSON (${(error as Error).message}). Fix: check the file's syntax.`,
    );
  }
  const result = configFileSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new ConfigError(
      setting,
      `${jsonPath(issue.path)}: ${issue.message}. Fix: see the "Config file" section of the README.`,
    );
  }
  const config = result.data;
  checkUniqueToolNames(config.events ?? {}, setting);
  return config;
}

export function loadConfigFile(file: string): ConfigFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(
      `--config ${file}`,
      `cannot be read (${code}). Fix: pass the path of a readable JSON file.`,
    );
  }
  return parseConfigFile(text, file);
}

/** Two types may not share a tool name: an agent could not tell their calls apart. */
function checkUniqueToolNames(events: EventOverrides, setting: string): void {
  const seen = new Map<string, string>();
  for (const [type, change] of Object.entries(events)) {
    if (change === false || !change.tool) continue;
    const other = seen.get(change.tool);
    if (other) {
      throw new ConfigError(
        setting,
        `$.events: the tool name ${JSON.stringify(change.tool)} is used for both ${other} and ${type}. Fix: give each type its own tool name.`,
      );
    }
    seen.set(change.tool, type);
  }
}
