// A fake Anthropic Messages API for bench/agent.mjs, in its own process as the real API is: its
// parsing and timers do not run on the event loop being measured. Every answer comes a fixed
// delay after the request arrived and decides the first action of the first tool offered; usage
// is about four characters a token. GET /_stats reports the requests seen and their input size.
//
//   node bench/fake-messages-api.mjs [delayMs]
//
// Prints {"port":N} on stdout once listening (and sends it over IPC when forked).
import http from 'node:http';

const DELAY_MS = Number(process.argv[2] ?? 200);
let requests = 0;
let inputChars = 0;

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/_stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ requests, inputChars }));
    return;
  }
  let raw = '';
  req.setEncoding('utf8');
  req.on('data', (chunk) => (raw += chunk));
  req.on('end', () => {
    const arrived = performance.now();
    const body = JSON.parse(raw);
    requests += 1;
    inputChars += raw.length;
    const n = requests;
    const tool = body.tools[0];
    const reply = {
      id: `msg_${n}`,
      type: 'message',
      role: 'assistant',
      model: body.model,
      content: [
        {
          type: 'tool_use',
          id: `toolu_${n}`,
          name: tool.name,
          input: { action: tool.input_schema.properties.action.enum[0], rationale: 'Benchmark.' },
        },
      ],
      stop_reason: 'tool_use',
      stop_sequence: null,
      usage: { input_tokens: Math.ceil(raw.length / 4), output_tokens: 30 },
    };
    const text = JSON.stringify(reply);
    setTimeout(
      () => res.writeHead(200, { 'content-type': 'application/json' }).end(text),
      Math.max(0, DELAY_MS - (performance.now() - arrived)),
    );
  });
});

// Connections wait idle between runs (while the next store is filled): a shorter keep-alive would
// close them as a client reuses one, and the bench would count a connection error.
server.keepAliveTimeout = 10 * 60_000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  process.send?.({ port });
});
process.on('disconnect', () => process.exit(0));
