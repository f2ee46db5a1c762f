/**
 * Issue #20 points 2 and 3 in a real browser (Debian's Chromium, playwright-core), against the
 * built server with the agent and the fake Anthropic API: the approval card shows what will
 * happen on one screen, Approve asks for a confirmation that repeats the amount, and an event the
 * model handed to a person is decided by the person (dispatched to an http sink) or marked handled.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestEvent } from '../../src/stripe/fixtures.js';
import { ownObject } from '../helpers/own-object.js';
import {
  firstDecision,
  startFakeAnthropic,
  toolUse,
  userText,
  type FakeRequest,
} from '../helpers/fake-anthropic.js';
import { e2eScope, queueCounts, sinkServer } from '../helpers/e2e.js';
import { newSecret, postWebhook, signatureHeader } from '../helpers/sign.js';
import { startServe, waitFor, type ServeHandle } from '../helpers/spawn.js';

const { cleanups, tmp } = e2eScope();
const SHOTS = process.env.CONSOLE_SCREENSHOTS ?? path.join(os.tmpdir(), 'console-screenshots');
const poll = <T>(fn: () => T | Promise<T>) => expect.poll(fn, { timeout: 10_000 });

const SUMMARY =
  'Delivered to the billing address, signed for.\n<b>Two</b> prior undisputed orders on the same card.';
const RATIONALE = 'Proof of delivery matches the billing address.';

let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'],
  });
});
afterAll(async () => {
  await browser?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext();
  cleanups.push(() => context.close());
  return context.newPage();
}

/** Asks a person for events whose metadata says so; else submits evidence with a summary. */
function model(req: FakeRequest) {
  if (userText(req).includes('ask-a-person-please')) {
    return toolUse('ask_a_person', { reason: 'The customer also wrote to support; check first.' });
  }
  const { tool } = firstDecision(req);
  return toolUse(tool, {
    action: 'submit_evidence',
    rationale: RATIONALE,
    evidence_summary: SUMMARY,
  });
}

async function agentServer(): Promise<{
  server: ServeHandle;
  sink: Awaited<ReturnType<typeof sinkServer>>;
  send: (event: Record<string, unknown>) => Promise<string>;
}> {
  const api = await startFakeAnthropic(model);
  cleanups.push(() => api.close());
  const sink = await sinkServer(cleanups);
  const secret = newSecret();
  const config = path.join(tmp(), 'agent.json');
  fs.writeFileSync(
    config,
    JSON.stringify({
      dispatch: { type: 'http', url: sink.url, secret: 'a-long-enough-test-secret' },
      approval: { tools: ['handle_dispute'] },
    }),
  );
  const server = await startServe({
    dataDir: tmp(),
    env: { STRIPE_WEBHOOK_SECRET: secret, ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: api.url },
    args: ['--agent', '--config', config],
  });
  const send = async (event: Record<string, unknown>) => {
    const payload = JSON.stringify(event);
    const res = await postWebhook(server.url, payload, {
      'stripe-signature': signatureHeader(payload, secret),
    });
    expect(res.status).toBe(200);
    return String(event.id);
  };
  return { server, sink, send };
}

function dispute(amount: number, currency: string, metadata: Record<string, string> = {}) {
  const event = ownObject(buildTestEvent('charge.dispute.created'));
  const object = (event.data as { object: Record<string, unknown> }).object;
  object.amount = amount;
  object.currency = currency;
  object.metadata = metadata;
  // Due in three days and a bit: the card says "due in 3 days".
  (object.evidence_details as Record<string, unknown>).due_by = Math.floor(
    (Date.now() + 3 * 86_400_000 + 3_600_000) / 1000,
  );
  return { event, objectId: String(object.id) };
}

describe('the approval card (issue #20.2)', () => {
  it('shows the text to be sent, the facts, the deadline and the Dashboard link without expanding anything; Approve confirms the amount', async () => {
    const { server, sink, send } = await agentServer();
    const usd = dispute(412_000, 'usd');
    const jpy = dispute(50_000, 'jpy');
    const usdId = await send(usd.event);
    const jpyId = await send(jpy.event);
    await waitFor(async () => (await queueCounts(server)).awaiting_approval === 2, 'two held');

    const page = await newPage();
    await page.setViewportSize({ width: 390, height: 900 });
    await page.goto(`${server.url}/console/event/${usdId}`);
    const card = page.locator('#approval-card');
    // The evidence summary, as text (its markup shown, not rendered), visible with no click.
    const sent = card.locator('.sent[data-field="evidence_summary"] .model-text');
    expect(await sent.isVisible()).toBe(true);
    expect(await sent.textContent()).toBe(SUMMARY);
    expect(await card.locator('.sent[data-field="evidence_summary"]').textContent()).toContain(
      'written by the model',
    );
    expect(await card.locator('b').count()).toBe(0);
    expect(await card.textContent()).toContain(RATIONALE);
    expect(await card.locator('.pill').textContent()).toBe('submit_evidence');
    expect(await card.locator('.amount').textContent()).toBe('$4,120.00');
    expect(await card.locator('.why').textContent()).toMatch(/handle_dispute/);
    expect(await card.locator('.deadline strong').textContent()).toBe('due in 3 days');
    expect(await card.locator('a.dashboard').getAttribute('href')).toBe(
      `https://dashboard.stripe.com/test/disputes/${usd.objectId}`,
    );
    for (const part of ['.amount', '.why', '.deadline', 'a.dashboard', '.model-text']) {
      expect(await card.locator(part).first().isVisible(), part).toBe(true);
    }
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'approval-card-390.png'), fullPage: true });
    // Still a phone page: nothing scrolls sideways.
    expect(
      await page.evaluate(() => {
        // The test's tsconfig has no DOM types: the page's globals, untyped.
        const { document, innerWidth } = globalThis as any;
        return document.documentElement.scrollWidth <= innerWidth;
      }),
    ).toBe(true);

    // The confirmation repeats the amount; Approve without it sends nothing.
    const confirm = page.getByRole('checkbox', { name: 'I approve sending $4,120.00' });
    expect(await confirm.isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Approve' }).click();
    expect((await queueCounts(server)).awaiting_approval).toBe(2);
    // Posted without the box ticked (no browser check), the server refuses too.
    const unconfirmed = await page.evaluate(async (id) => {
      const res = await fetch(`/console/event/${id}/approve`, {
        method: 'POST',
        headers: { Accept: 'application/json' },
      });
      return { status: res.status, body: (await res.json()) as { message: string } };
    }, usdId);
    expect(unconfirmed.status).toBe(400);
    expect(unconfirmed.body.message).toMatch(/confirmation that repeats the amount/);
    expect(sink.bodies).toEqual([]);

    await confirm.check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => page.locator('#summary .chip').textContent()).toBe('approved');
    expect(sink.bodies.map((b) => b.event_id)).toEqual([usdId]);

    // A yen amount reads in yen in the confirmation.
    await page.goto(`${server.url}/console/event/${jpyId}`);
    expect(await card.locator('.amount').textContent()).toBe('¥50,000');
    const yen = page.getByRole('checkbox', { name: 'I approve sending ¥50,000' });
    await yen.check();
    await page.getByRole('button', { name: 'Approve' }).click();
    await poll(() => page.locator('#summary .chip').textContent()).toBe('approved');
    expect(sink.bodies.map((b) => b.event_id)).toEqual([usdId, jpyId]);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});

describe('ask a person leads somewhere (issue #20.3)', () => {
  it('the person chooses the action and fills its fields: an invalid field is shown beside it and nothing is dispatched; a valid one goes to the http sink', async () => {
    const { server, sink, send } = await agentServer();
    const asked = dispute(412_000, 'usd', { route: 'ask-a-person-please' });
    const id = await send(asked.event);
    await waitFor(async () => (await queueCounts(server)).awaiting_approval === 1, 'held');

    const page = await newPage();
    await page.goto(`${server.url}/console/event/${id}`);
    // No call to approve: no Approve button, the form instead.
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    expect(await page.locator('#approval-card').textContent()).toMatch(/asked a person/);
    await page.setViewportSize({ width: 1280, height: 1000 });
    await page.getByLabel('action', { exact: true }).selectOption('submit_evidence');
    await page.getByLabel('evidence_summary').fill('Signed delivery receipt attached.');
    // The rationale left empty: the same rule as the model's decision refuses it.
    await page.getByRole('button', { name: 'Dispatch this decision' }).click();
    const error = page.locator('.field.invalid .field-error');
    await poll(() => error.textContent()).toMatch(/rationale is required/);
    expect(await page.locator('.field.invalid textarea').getAttribute('name')).toBe('rationale');
    // Nothing lost, nothing sent.
    expect(await page.getByLabel('action', { exact: true }).inputValue()).toBe('submit_evidence');
    expect(await page.getByLabel('evidence_summary').inputValue()).toBe(
      'Signed delivery receipt attached.',
    );
    expect(sink.bodies).toEqual([]);
    expect((await queueCounts(server)).awaiting_approval).toBe(1);
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'ask-a-person-error.png'), fullPage: true });

    await page.getByLabel('rationale', { exact: true }).fill('Support confirmed the delivery.');
    await page.getByRole('button', { name: 'Dispatch this decision' }).click();
    await poll(() => page.locator('#summary .chip').textContent()).toBe('decided by a person');
    expect(sink.bodies).toHaveLength(1);
    const call = sink.bodies[0]!.tool_call as { name: string; input: Record<string, unknown> };
    expect(sink.bodies[0]!.event_id).toBe(id);
    expect(call.name).toBe('handle_dispute');
    expect(call.input).toMatchObject({
      action: 'submit_evidence',
      rationale: 'Support confirmed the delivery.',
      evidence_summary: 'Signed delivery receipt attached.',
      // The facts are the event's own.
      stripe_id: asked.objectId,
      amount: 412_000,
      currency: 'usd',
    });
    expect(await page.locator('.timeline').textContent()).toMatch(/decided by console:/);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });

  it('marks an ask-a-person event handled by hand with a note: acked, nothing dispatched', async () => {
    const { server, sink, send } = await agentServer();
    const id = await send(dispute(9_900, 'usd', { route: 'ask-a-person-please' }).event);
    await waitFor(async () => (await queueCounts(server)).awaiting_approval === 1, 'held');
    const page = await newPage();
    await page.goto(`${server.url}/console/event/${id}`);
    await page.getByLabel('Note').fill('refunded by phone');
    await page.getByRole('button', { name: 'Mark handled' }).click();
    await poll(() => page.locator('#summary .chip').textContent()).toBe('handled by hand');
    await poll(() => page.locator('.timeline').textContent()).toMatch(
      /handled by hand by console:\d+: refunded by phone/,
    );
    expect(sink.bodies).toEqual([]);
    expect(await server.stop()).toEqual({ code: 0, signal: null });
  });
});
