import Anthropic from '@anthropic-ai/sdk';

/** The Messages API client every model request goes through. */
export type ModelClient = Anthropic;

/**
 * The one place the Anthropic client is built, so that a caller outside `agent/` needs no import
 * of the SDK. Without `baseURL` the SDK reads ANTHROPIC_BASE_URL itself (a gateway, or a test's
 * fake API).
 */
export function createModelClient(options: {
  apiKey: string;
  maxRetries?: number;
  baseURL?: string;
}): ModelClient {
  return new Anthropic({
    apiKey: options.apiKey,
    ...(options.maxRetries !== undefined && { maxRetries: options.maxRetries }),
    ...(options.baseURL !== undefined && { baseURL: options.baseURL }),
  });
}

/**
 * The HTTP status a Messages API request was refused with, or undefined when the error is not an
 * answer of the API (connection lost, timed out, aborted, or not an API error at all).
 */
export function apiErrorStatus(error: unknown): number | undefined {
  return error instanceof Anthropic.APIError && typeof error.status === 'number'
    ? error.status
    : undefined;
}

/**
 * Whether a failed request may still have been billed: one the API answered with an HTTP error
 * status was not processed, but one cut off before its answer (connection, timeout, abort) may
 * have run to the end on the server.
 */
export function mayHaveBeenBilled(error: unknown): boolean {
  return apiErrorStatus(error) === undefined;
}
