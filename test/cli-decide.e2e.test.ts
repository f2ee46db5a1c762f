/**
 * `events decide` and `events handled` (issue #20.3): from the CLI, a person decides an event the
 * agent handed to a person — the built CLI against a real SQLite store, dispatching to a real
 * http sink — or marks it handled by hand.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openSqliteBuffer } from '../src/buffer/sqlite/store.js';
import { buildTestEvent } from '../src/stripe/fixtures.js';
import { e2eScope, sinkServer } from './helpers/e2e.js';
import { runCli, type CliResult } from './helpers/spawn.js';

const { cleanups, tmp } = e2eScope();

function explain(r: CliResult): string {
  return `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
}

/** A dispute the agent handed to a person, held as the loop holds it: no decided call. */
async function askedAPerson(dataDir: string): Promise<string> {
  const store = openSqliteBuffer(dataDir, {});
  const event = buildTestEvent('charge.dispute.created');
  const object = (event.data as { object: Record<string, unknown> }).object;
  Object.assign(object, { amount: 412_000, currency: 'usd' });
  await store.append({
    id: String(event.id),
    type: 'charge.dispute.created',
    created: Number(event.created),
    livemode: false,
    objectId: String(object.id),
    payload: JSON.stringify(event),
  });
  const [claimed] = await store.claim({ owner: 'worker-1', leaseMs: 600_000 });
  await store.hold(claimed!.id, claimed!.leaseOwner!, 'a person must look: the customer called', [
    { kind: 'decision', outcome: 'ask_a_person', note: 'the customer called' },
  ]);
  await store.close();
  return String(event.id);
}

async function show(dataDir: string, id: string) {
  const r = await runCli(['events', 'show', id, '--json', '--data-dir', dataDir]);
  expect(r.code, explain(r)).toBe(0);
  return JSON.parse(r.stdout) as {
    status: string;
    outcome: string | null;
    history: { kind: string; by?: string; note?: string; outcome?: string }[];
  };
}

describe('events decide and events handled', () => {
  it("decide refuses a bad field by name and dispatches nothing; a valid decision goes to --config's http handler with the person's fields", async () => {
    const dataDir = tmp();
    const sink = await sinkServer(cleanups);
    const config = path.join(tmp(), 'config.json');
    fs.writeFileSync(
      config,
      JSON.stringify({ dispatch: { type: 'http', url: sink.url, secret: 'a-long-random-secret' } }),
    );
    const id = await askedAPerson(dataDir);
    const env = { USER: 'alice' };

    const bad = await runCli(
      ['events', 'decide', id, '--action', 'submit_evidence', '--config', config],
      { env: { ...env, STRIPE_EVENTS_DATA_DIR: dataDir } },
    );
    expect(bad.code, explain(bad)).toBe(1);
    expect(bad.stderr).toMatch(/rationale: rationale is required.*Nothing was dispatched/);
    const malformed = await runCli(
      ['events', 'decide', id, '--action', 'accept', '--set', 'no-equals', '--data-dir', dataDir],
      { env },
    );
    expect(malformed.code, explain(malformed)).toBe(2);
    expect(malformed.stderr).toMatch(/--set.*not field=value/);
    expect(sink.bodies).toEqual([]);
    expect((await show(dataDir, id)).status).toBe('awaiting_approval');

    const done = await runCli(
      [
        'events',
        'decide',
        id,
        '--action',
        'submit_evidence',
        '--set',
        'rationale=Support confirmed delivery.',
        '--set',
        'evidence_summary=Signed receipt; a=b stays whole.',
        '--config',
        config,
        '--data-dir',
        dataDir,
      ],
      { env },
    );
    expect(done.code, explain(done)).toBe(0);
    expect(done.stdout).toBe(
      `${id} decided: dispatched (handle_dispute submit_evidence $4,120.00); acked\n`,
    );
    expect(sink.bodies).toHaveLength(1);
    expect(sink.bodies[0]).toMatchObject({
      event_id: id,
      tool_call: {
        name: 'handle_dispute',
        input: {
          action: 'submit_evidence',
          rationale: 'Support confirmed delivery.',
          evidence_summary: 'Signed receipt; a=b stays whole.',
          amount: 412_000,
        },
      },
    });
    const shown = await show(dataDir, id);
    expect(shown).toMatchObject({ status: 'acked', outcome: 'decided' });
    expect(shown.history).toContainEqual(
      expect.objectContaining({ kind: 'decision', by: 'cli:alice', outcome: 'decided' }),
    );
  });

  it('handled acks with the note and dispatches nothing; an empty note is refused', async () => {
    const dataDir = tmp();
    const id = await askedAPerson(dataDir);
    const empty = await runCli(['events', 'handled', id, '--note', ' ', '--data-dir', dataDir]);
    expect(empty.code, explain(empty)).toBe(2);
    const r = await runCli(
      ['events', 'handled', id, '--note', 'refunded by phone', '--data-dir', dataDir],
      { env: { USER: 'bob' } },
    );
    expect(r.code, explain(r)).toBe(0);
    expect(r.stdout).toBe(`${id} handled by hand: refunded by phone; acked, nothing dispatched\n`);
    const shown = await show(dataDir, id);
    expect(shown).toMatchObject({ status: 'acked', outcome: 'handled' });
    expect(shown.history.at(-1)).toMatchObject({
      kind: 'acked',
      by: 'cli:bob',
      note: 'handled by hand by cli:bob: refunded by phone',
    });
  });
});
