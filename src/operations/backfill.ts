import { AppError } from '../errors.js';

/** How far a backfill got: reported while it runs and returned at the end. */
export interface BackfillProgress {
  fetched: number;
  queued: number;
  duplicate: number;
  ignored: number;
}

export interface BackfillRequest {
  /** As the person wrote it (`24h`, an ISO time, `evt_…`); default 24 hours back. */
  since?: string;
  /** Default: every type the catalog maps. */
  types?: readonly string[];
  onProgress?: (counts: Readonly<BackfillProgress>) => void;
}

/**
 * Pulls missed events from Stripe's Events API into the store. Built by the composition
 * (src/compose/services.ts) from ingress/backfill.ts, which operations may not import: ingress is
 * a door, like MCP, above this layer.
 */
export type BackfillRunner = (request: BackfillRequest) => Promise<BackfillProgress>;

/** A backfill asked of a process that has no STRIPE_SECRET_KEY: nothing was fetched. */
export class BackfillUnavailableError extends AppError {
  constructor() {
    super(
      'needs_key',
      'backfill needs STRIPE_SECRET_KEY on the server, and it is not set: nothing was fetched. The operator can set it and restart, or run `stripe-events-mcp backfill`',
    );
  }
}
