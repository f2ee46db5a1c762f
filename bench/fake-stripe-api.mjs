// A fake Stripe API for bench/agent.mjs's `fresh` mode, in its own process as the real API is:
// GET /v1/<resource>/<id> answers the object registered under that id (POST /_objects with a JSON
// map id → object) a fixed delay after the request arrived. GET /_stats reports the reads seen.
//
//   node bench/fake-stripe-api.mjs [delayMs]
//
// Sends {"port":N} over IPC once listening.
import http from 'node:http';

const DELAY_MS = Number(process.argv[2] ?? 0);
const objects = new Map();
let reads = 0;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/_stats') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ reads }));
    return;
  }
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (raw += chunk));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/_objects') {
      for (const [id, object] of Object.entries(JSON.parse(raw))) objects.set(id, object);
      res.writeHead(204).end();
      return;
    }
    const arrived = performance.now();
    const id = decodeURIComponent(new URL(req.url, 'http://fake').pathname.split('/').pop());
    const object = objects.get(id);
    reads += 1;
    const [status, body] = object
      ? [200, object]
      : [404, { error: { type: 'invalid_request_error', message: `No such object: '${id}'` } }];
    const text = JSON.stringify(body);
    setTimeout(
      () => res.writeHead(status, { 'content-type': 'application/json' }).end(text),
      Math.max(0, DELAY_MS - (performance.now() - arrived)),
    );
  });
});

server.keepAliveTimeout = 10 * 60_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.({ port: server.address().port });
});
