import type { ConfigFile } from '../config/file.js';

/** USD per million tokens. */
export interface ModelPrice {
  input_per_mtok: number;
  output_per_mtok: number;
}

export type PricingOverrides = NonNullable<ConfigFile['pricing']>;

/**
 * List prices of the Claude API (standard, not Batch; no prompt caching, which the decision step
 * does not use), from Anthropic's model pages at platform.claude.com/docs/en/models as of
 * 2026-11. Prices change: a config file's `pricing` overrides any entry and adds models not here.
 * Claude Haiku 5.5 is priced by prompt length; the band listed is for prompts up to 100,000
 * tokens, far above one rendered event.
 */
export const LIST_PRICES: Readonly<Record<string, ModelPrice>> = {
  'claude-fable-5-2': { input_per_mtok: 8, output_per_mtok: 40 },
  'claude-fable-5-1': { input_per_mtok: 10, output_per_mtok: 50 },
  'claude-opus-5-5': { input_per_mtok: 4, output_per_mtok: 20 },
  'claude-opus-5': { input_per_mtok: 5, output_per_mtok: 25 },
  'claude-sonnet-5-5': { input_per_mtok: 2, output_per_mtok: 10 },
  'claude-sonnet-5': { input_per_mtok: 2, output_per_mtok: 10 },
  'claude-haiku-5-5': { input_per_mtok: 0.1, output_per_mtok: 0.5 },
  'claude-opus-4-6': { input_per_mtok: 5, output_per_mtok: 25 },
  'claude-opus-4-5': { input_per_mtok: 5, output_per_mtok: 25 },
  'claude-sonnet-4-5': { input_per_mtok: 3, output_per_mtok: 15 },
  'claude-haiku-4-5': { input_per_mtok: 1, output_per_mtok: 5 },
};

/** A dated snapshot (`claude-haiku-4-5-20251001`) costs what its alias costs. */
const SNAPSHOT = /-\d{8}$/;

/** The price of a model: the config's `pricing` first, then the list; null when unknown. */
export function priceOf(model: string, overrides: PricingOverrides = {}): ModelPrice | null {
  const alias = model.replace(SNAPSHOT, '');
  return overrides[model] ?? overrides[alias] ?? LIST_PRICES[model] ?? LIST_PRICES[alias] ?? null;
}

export interface TokenUsage {
  input_tokens: number;
  output_tokens: number;
}

/** What `usage` costs at `price`, in USD. */
export function costOf(usage: TokenUsage, price: ModelPrice): number {
  return (
    (usage.input_tokens * price.input_per_mtok + usage.output_tokens * price.output_per_mtok) / 1e6
  );
}
