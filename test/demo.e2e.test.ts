/**
 * `demo`: the whole loop without any key. The spawned CLI starts the server and the agent loop
 * with the scripted model, sends its test events, and the console (its HTML, over real HTTP)
 * shows a dispatched decision, a call awaiting approval and an event asking a person — every
 * decision labelled as the demo model's. Ctrl-C stops it and removes its temporary directory.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { e2eScope } from './helpers/e2e.js';
import { CLI, cliEnv, REPO_ROOT, runCli, waitFor } from './helpers/spawn.js';

const { tmp } = e2eScope();

/** The scripted model's label, as the history and the console show it. */
const DEMO_MODEL = 'demo (scripted)';
/** The label's words (the console's banner starts its sentence with them: capitalised). */
const NOTE = /demo model: decisions are scripted, nothing is sent to Anthropic/i;

interface EventPage {
  id: string;
  status: string;
  html: string;
}

async function text(url: string): Promise<string> {
  const response = await fetch(url);
  expect(response.status).toBe(200);
  return response.text();
}

/** Every event of the console's queue, with its own page. */
async function consoleEvents(base: string): Promise<{ overview: string; events: EventPage[] }> {
  const overview = await text(`${base}/console`);
  const rows = [...overview.matchAll(/<tr data-id="(evt_[^"]+)" class="row s-([a-z_]+)">/g)];
  const events = await Promise.all(
    rows.map(async ([, id, status]) => ({
      id: id!,
      status: status!,
      html: await text(`${base}/console/event/${encodeURIComponent(id!)}`),
    })),
  );
  return { overview, events };
}

/** The history entries of an event page, as the console renders them (one `<li>` each). */
function historyItems(html: string, kind: string): string[] {
  return [...html.matchAll(new RegExp(`<li class="k-${kind}">(.*?)</li>`, 'gs'))].map((m) => m[1]!);
}

describe('demo', () => {
  it('runs the loop offline: dispatched, awaiting approval and asking a person, all labelled', async () => {
    // No key of any kind: cliEnv removes ANTHROPIC_* and STRIPE_* from the environment.
    const env = cliEnv({ LOG_LEVEL: undefined });
    for (const name of Object.keys(env)) {
      expect(name.startsWith('ANTHROPIC_') || name.startsWith('STRIPE_'), name).toBe(false);
    }
    const child = spawn(process.execPath, [CLI, 'demo'], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    try {
      const started = Date.now();
      const base = await waitFor(
        () => /is listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stderr)?.[1],
        'the demo to listen',
      );
      // Start-up says what the model is, where the data lives, and where things are.
      expect(stderr).toMatch(NOTE);
      expect(stderr).toMatch(new RegExp(`console +${base.replace(/\./g, '\\.')}/console`));
      const dataDir = /data +(\S+) \(temporary/.exec(stderr)?.[1];
      expect(dataDir).toBeDefined();
      expect(fs.existsSync(dataDir!)).toBe(true);

      // Waited for as conditions, within the 20 s the issue allows (not a sleep).
      const seen = await waitFor(
        async () => {
          const { overview, events } = await consoleEvents(base);
          const dispatched = events.find(
            (e) =>
              e.status === 'acked' &&
              historyItems(e.html, 'dispatch').some((li) => li.includes('outcome recorded')),
          );
          const approval = events.find(
            (e) =>
              e.status === 'awaiting_approval' &&
              historyItems(e.html, 'decision').some((li) => li.includes('outcome decided')),
          );
          const asking = events.find(
            (e) =>
              e.status === 'awaiting_approval' &&
              historyItems(e.html, 'decision').some((li) => li.includes('outcome ask_a_person')),
          );
          const settled =
            events.length === 6 && events.every((e) => !/pending|claimed/.test(e.status));
          return dispatched && approval && asking && settled
            ? { overview, events, dispatched, approval, asking }
            : undefined;
        },
        'the console to show a dispatched decision, a held call and a person asked',
        20_000,
      );
      expect(Date.now() - started).toBeLessThan(20_000);

      // The held call is the large dispute, over the demo's $500.00 threshold.
      expect(seen.approval.html).toContain('$4,120.00');
      expect(seen.approval.html).toContain('is over the $500.00 threshold');
      // The console says it is a demo, on the queue and on each event's page.
      expect(seen.overview).toMatch(NOTE);
      // Every decision in every history is the demo model's.
      let decisions = 0;
      for (const event of seen.events) {
        expect(event.html).toMatch(NOTE);
        for (const li of historyItems(event.html, 'decision')) {
          decisions += 1;
          expect(li, event.id).toContain(`model ${DEMO_MODEL}`);
        }
      }
      expect(decisions).toBe(6);

      // It printed what happened and what to try.
      await waitFor(() => stderr.includes('Ctrl-C stops the demo'), 'the closing lines');
      expect(stderr).toMatch(/asks a person: /);
      expect(stderr).toMatch(/awaiting approval/);
      expect(stderr).toMatch(/dispatched \(recorded\)/);
      expect(stderr).toContain(`claude mcp add --transport http stripe-events-demo ${base}/mcp`);

      // Ctrl-C: stops, and removes the temporary directory.
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(fs.existsSync(dataDir!)).toBe(false);
      expect(stderr).toContain('Demo stopped;');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it.each(['STRIPE_SECRET_KEY', 'ANTHROPIC_API_KEY'])(
    'refuses a live key in %s (exit 2, one line, the key not printed)',
    async (name) => {
      const key = 'sk_live_51Qdemo0000000000000000000000';
      const result = await runCli(['demo'], { env: { [name]: key } });
      expect(result.code).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(name);
      expect(result.stderr).toContain('live key');
      expect(result.stderr).not.toContain(key);
    },
  );

  it('refuses an existing --data-dir (exit 2) and leaves it as it was', async () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'mine.txt'), 'keep me');
    const result = await runCli(['demo', '--data-dir', dir]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('--data-dir');
    expect(result.stderr).toContain('already exists');
    expect(fs.readdirSync(dir)).toEqual(['mine.txt']);
  });
});
