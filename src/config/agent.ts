import { ConfigError } from '../errors.js';
import { wholeNumber } from './numbers.js';

/** Settings of the autonomous loop (`agent`, or `serve --agent`). */
export interface AgentSettings {
  apiKey: string;
  model: string;
  concurrency: number;
  maxTurns: number;
  maxTokens: number;
  dryRun: boolean;
  leaseMs: number;
  /** Another Messages API endpoint for this loop (the demo's scripted model); else the SDK's. */
  baseURL?: string;
}

export interface AgentFlags {
  model?: string;
  concurrency?: string;
  maxTurns?: string;
  maxTokens?: string;
  dryRun?: boolean;
  leaseSeconds?: string;
}

/** The newest Sonnet in the SDK's model list when this was written; override with --model. */
export const DEFAULT_MODEL = 'claude-sonnet-5-5';

/**
 * The shortest lease: the loop renews a claim every third of its lease (at most once a second), so
 * a shorter one expires between renewals and the event is claimed again while being worked on.
 */
export const MIN_LEASE_SECONDS = 5;

function read(
  flag: string,
  value: string | undefined,
  fallback: number,
  max: number,
  fix: string,
  min = 1,
): number {
  if (value === undefined) return fallback;
  const result = wholeNumber(min, max).safeParse(value);
  if (!result.success) {
    throw new ConfigError(
      flag,
      `${JSON.stringify(value)} is not valid (${result.error.issues[0]?.message}). Fix: ${fix}`,
    );
  }
  return result.data;
}

/**
 * The loop's model: defaults < the config file's `model` < ANTHROPIC_MODEL < --model. One function,
 * so the config's `pricing` and `budget` are checked against the model the loop really uses.
 */
export function resolveModel(
  flagModel: string | undefined,
  env: NodeJS.ProcessEnv,
  fileModel: string | undefined,
): string {
  return flagModel ?? (env.ANTHROPIC_MODEL?.trim() || fileModel || DEFAULT_MODEL);
}

/** Defaults < the config file's `model` < ANTHROPIC_MODEL < --model. */
export function loadAgentConfig(
  flags: AgentFlags,
  env: NodeJS.ProcessEnv = process.env,
  fileModel?: string,
): AgentSettings {
  const apiKey = env.ANTHROPIC_API_KEY?.trim();
  if (!apiKey) {
    throw new ConfigError(
      'ANTHROPIC_API_KEY',
      'is not set, and the agent loop needs it to ask Claude. Fix: export ANTHROPIC_API_KEY=sk-ant-… (or run `serve` without --agent).',
    );
  }
  const model = resolveModel(flags.model, env, fileModel);
  return {
    apiKey,
    model,
    concurrency: read(
      '--concurrency',
      flags.concurrency,
      2,
      64,
      'how many events to work on at once, e.g. --concurrency 2.',
    ),
    maxTurns: read(
      '--max-turns',
      flags.maxTurns,
      4,
      20,
      'model requests per event, e.g. --max-turns 4.',
    ),
    maxTokens: read(
      '--max-tokens',
      flags.maxTokens,
      1024,
      64_000,
      'output tokens per request, e.g. --max-tokens 1024.',
    ),
    dryRun: flags.dryRun ?? false,
    leaseMs:
      read(
        '--lease-seconds',
        flags.leaseSeconds,
        120,
        3600,
        `seconds a claim lasts, from ${MIN_LEASE_SECONDS} to 3600, e.g. --lease-seconds 120.`,
        MIN_LEASE_SECONDS,
      ) * 1000,
  };
}
