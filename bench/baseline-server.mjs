// The minimal hand-written Stripe webhook receiver: verify, dedup in a Set, answer. Nothing is
// durable: a crash loses every event and the dedup memory. Same-run baseline for bench/ingest.mjs.
//
//   STRIPE_WEBHOOK_SECRET=whsec_… node bench/baseline-server.mjs [port]
//
// Port from argv, else env PORT, else 0; prints {"port":N} on stdout once listening.
import express from 'express';
import Stripe from 'stripe';

const secret = process.env.STRIPE_WEBHOOK_SECRET;
if (!secret) {
  process.stderr.write('baseline-server: set STRIPE_WEBHOOK_SECRET\n');
  process.exit(2);
}
const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const host = process.env.HOST ?? '127.0.0.1';

const seen = new Set();
const app = express();

app.post('/stripe/webhook', express.raw({ type: 'application/json' }), (req, res) => {
  let event;
  try {
    event = Stripe.webhooks.constructEvent(req.body, req.headers['stripe-signature'], secret, 300);
  } catch (error) {
    return res.status(400).send(`Webhook Error: ${error.message}`);
  }
  if (seen.has(event.id)) return res.json({ received: true, duplicate: true });
  seen.add(event.id);
  res.json({ received: true });
});

const server = app.listen(port, host, () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    server.close(() => process.exit(0));
    server.closeIdleConnections();
  });
}
