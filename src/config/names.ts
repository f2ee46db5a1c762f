import { ConfigError } from '../errors.js';
import type { ConfigFile } from './file.js';
import { closest } from './suggest.js';

/**
 * The names a config file uses must name something: a tool of the active catalog, the model in
 * use, a handler the catalog can call. A control keyed by a typo (`approval.tools:
 * ["handle_disputes"]`, `limits.retry_failed_paymnet`) would otherwise be read without a word and
 * never apply, so the loop would run with that control switched off. Each miss is a ConfigError
 * (exit 2) naming the JSON path, with a did-you-mean when a name is close.
 */

/**
 * Keys refused anywhere in a config file. In an object they reach the prototype machinery instead
 * of an entry of their own: `limits.constructor` reads Object's constructor, and a record built by
 * assignment (as zod builds one) turns a `__proto__` key into its prototype, dropping the entry.
 */
export const PROTOTYPE_KEYS: readonly string[] = ['__proto__', 'constructor', 'prototype'];

/** `$.approval.tools[0]`, `$.events["invoice.paid"].tool`: where in the file a problem is. */
export function jsonPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>(
    (out, key) =>
      typeof key === 'number'
        ? `${out}[${key}]`
        : /^[A-Za-z_$][\w$]*$/.test(String(key)) && !PROTOTYPE_KEYS.includes(String(key))
          ? `${out}.${String(key)}`
          : `${out}[${JSON.stringify(String(key))}]`,
    '$',
  );
}

/** What a key directly under these settings stands for, for the refusal of a prototype key. */
const KEY_MEANS: Readonly<Record<string, string>> = {
  events: 'an event type',
  limits: 'a tool name',
  pricing: 'a model id',
};

/**
 * Refuses `__proto__`, `constructor` and `prototype` as keys at any depth of the parsed file.
 * JSON.parse keeps each as a plain own key, so they are found on the parsed value, before any
 * schema copies it. Iterative, so a deeply nested file cannot overflow the stack.
 */
export function refusePrototypeKeys(json: unknown, setting: string): void {
  const stack: { value: unknown; path: PropertyKey[] }[] = [{ value: json, path: [] }];
  while (stack.length > 0) {
    const { value, path } = stack.pop()!;
    if (value === null || typeof value !== 'object') continue;
    const entries: [PropertyKey, unknown][] = Array.isArray(value)
      ? value.map((item, i) => [i, item])
      : Object.keys(value).map((key) => [key, (value as Record<string, unknown>)[key]]);
    for (const [key] of entries) {
      if (typeof key === 'string' && PROTOTYPE_KEYS.includes(key)) {
        const parent = path.length === 1 ? String(path[0]) : '';
        const means = KEY_MEANS[parent] ?? 'a key this file may use';
        throw new ConfigError(
          setting,
          `${jsonPath([...path, key])}: is not ${means}: ${PROTOTYPE_KEYS.join(', ')} are refused as keys anywhere in a config file (they would reach the object's prototype, not an entry of their own). Fix: remove that key.`,
        );
      }
    }
    // Reversed onto the stack, so the first offending key in the file is the one reported.
    for (const [key, child] of entries.reverse())
      stack.push({ value: child, path: [...path, key] });
  }
}

/**
 * After zod's `Unrecognized key: "expires_afer"`: `; did you mean "expires_after"?`, or the keys
 * that object takes. A misspelt key would otherwise be read as absent and its default would apply
 * — for `approval.on_expiry` or `expires_after`, a guardrail quietly weaker than the one written.
 */
export function unknownKeysNote(unknown: readonly string[], known: readonly string[]): string {
  if (known.length === 0) return '';
  const close = closest(unknown[0] ?? '', known);
  if (close.length > 0)
    return `; did you mean ${close.map((c) => JSON.stringify(c)).join(' or ')}?`;
  return ` (the keys here: ${known.join(', ')})`;
}

/**
 * `<subject> not a tool of the catalog; did you mean "x"?` — or, when no tool is close, the
 * catalog's tools and `fix`.
 */
export function notAToolMessage(
  subject: string,
  name: string,
  tools: readonly string[],
  fix: string,
): string {
  const close = closest(name, tools);
  if (close.length > 0) {
    return `${subject} not a tool of the catalog; did you mean ${close.map((c) => JSON.stringify(c)).join(' or ')}?`;
  }
  const listed = tools.length > 0 ? tools.join(', ') : 'none: every type is removed';
  return `${subject} not a tool of the catalog (its tools: ${listed}). Fix: ${fix}`;
}

const TOOL_FIX =
  'name one of its tools, or map an event type to this tool under "events" (`stripe-events-mcp catalog --config <file>` lists them).';

/**
 * Every place the file names a tool, against the tools of the active catalog (the default one
 * with this file's `events` applied): `approval.tools[i]` and the keys of `limits`.
 */
export function checkToolReferences(
  config: ConfigFile,
  tools: readonly string[],
  setting: string,
): void {
  const named: [PropertyKey[], string][] = [
    ...(config.approval?.tools ?? []).map((tool, i): [PropertyKey[], string] => [
      ['approval', 'tools', i],
      tool,
    ]),
    ...Object.keys(config.limits ?? {}).map((tool): [PropertyKey[], string] => [
      ['limits', tool],
      tool,
    ]),
  ];
  for (const [path, tool] of named) {
    if (tools.includes(tool)) continue;
    throw new ConfigError(
      setting,
      `${jsonPath(path)}: ${notAToolMessage(`${JSON.stringify(tool)} is`, tool, tools, TOOL_FIX)}`,
    );
  }
}

/**
 * A `module` dispatch's exported handlers, against the catalog's tools: an export named after no
 * tool is never called, most likely because its name is a typo of the tool it was meant for (whose
 * events would then fail to dispatch, or be dispatched nowhere).
 */
export function checkModuleHandlers(
  exported: readonly string[],
  modulePath: string,
  tools: readonly string[],
  setting: string,
): void {
  for (const name of exported) {
    if (tools.includes(name)) continue;
    throw new ConfigError(
      setting,
      `${jsonPath(['dispatch', 'path'])}: ${notAToolMessage(
        `${modulePath} exports ${JSON.stringify(name)}, which is`,
        name,
        tools,
        'rename the export after the tool it handles, or stop exporting it (a helper can stay unexported), or map an event type to that tool under "events".',
      )}`,
    );
  }
}

type Pricing = NonNullable<ConfigFile['pricing']>;

/**
 * The price list the loop charges decisions at (src/agent/pricing.ts, which the config layer may
 * not import): passed in by the caller that knows the model in use.
 */
export interface PriceList {
  /** The price of `model`, `overrides` first, then the list; null when unknown. */
  priceOf(model: string, overrides?: Pricing): object | null;
  /** The models with a built-in price. */
  list: Readonly<Record<string, unknown>>;
}

/**
 * The file's `pricing` against the model in use, and (with `budget`) that model's price. A
 * `pricing` key that is neither a built-in model nor the model in use prices nothing: most likely
 * a typo of the model in use, whose price would then be missing. And a `budget.daily_usd` the
 * loop cannot price is a budget it cannot enforce (it would count tokens only).
 */
export function checkPricing(
  config: Pick<ConfigFile, 'budget' | 'pricing'>,
  model: string,
  prices: PriceList,
  setting: string,
  options: { budget: boolean },
): void {
  const probe = { input_per_mtok: 0, output_per_mtok: 0 };
  for (const key of Object.keys(config.pricing ?? {})) {
    const builtIn = prices.priceOf(key) !== null;
    // Asked of priceOf itself, so a key for the model's dated snapshot or alias counts as used
    // exactly when the loop would use it.
    const usedForModel = prices.priceOf(model, { [key]: probe }) === probe;
    if (builtIn || usedForModel) continue;
    const subject = `${jsonPath(['pricing', key])}: ${JSON.stringify(key)} is neither the model in use (${model}) nor a model with a built-in price, so it prices nothing`;
    const close = closest(key, [model, ...Object.keys(prices.list).filter((m) => m !== model)]);
    throw new ConfigError(
      setting,
      close.length > 0
        ? `${subject}; did you mean ${close.map((c) => JSON.stringify(c)).join(' or ')}?`
        : `${subject}. Fix: key it by the model in use (the config's "model", --model or ANTHROPIC_MODEL choose it), or remove it.`,
    );
  }
  if (
    options.budget &&
    config.budget?.daily_usd !== undefined &&
    prices.priceOf(model, config.pricing ?? {}) === null
  ) {
    throw new ConfigError(
      setting,
      `${jsonPath(['budget', 'daily_usd'])}: the model in use, ${model}, has no price (none built in, none under "pricing"), so the daily budget could not be enforced. Fix: add "pricing": {${JSON.stringify(model)}: {"input_per_mtok": …, "output_per_mtok": …}} (US dollars per million tokens), or use a model with a built-in price.`,
    );
  }
}
