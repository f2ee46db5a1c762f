#!/usr/bin/env node
import { createRequire } from 'node:module';
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import type { DemoOptions } from './cli/demo.js';
import type {
  DecideOptions,
  EventsOptions,
  ListOptions,
  NackOptions,
  ReasonOptions,
} from './cli/events.js';
import type { PeopleOptions } from './cli/people.js';
import { DEFAULT_MODEL, loadAgentConfig, type AgentFlags } from './config/agent.js';
import { DEFAULT_WEBHOOK_URL, loadServeConfig, type ServeFlags } from './config/config.js';
import { EVENT_OUTCOMES } from './buffer/buffer.js';
import { AppError, ConfigError } from './errors.js';
import { createLogger } from './logger.js';
import { unknownCommandMessage } from './cli/suggest.js';

/** Exit codes: 0 ok, 1 runtime failure (e.g. a non-2xx answer), 2 bad configuration or usage. */
const EXIT_CONFIG = 2;

/** A command line that names no command this program has: exit 2, one line. */
class UsageError extends Error {}

function fail(error: unknown): never {
  if (error instanceof ConfigError || error instanceof UsageError) {
    process.stderr.write(`stripe-events-mcp: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const message =
    error instanceof AppError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`stripe-events-mcp: ${message}\n`);
  process.exit(1);
}

/** The version in package.json (dist/cli.js → ../package.json, in a clone and when installed). */
function packageVersion(): string {
  try {
    const pkg = createRequire(import.meta.url)('../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const dataDirOption = () =>
  new Option(
    '--data-dir <dir>',
    'where the event store lives (env STRIPE_EVENTS_DATA_DIR; default: a per-user data directory)',
  );

const storeOption = () =>
  new Option(
    '--store <kind>',
    'event store: sqlite (default, one instance) or redis (several instances; env REDIS_URL, default redis://127.0.0.1:6379)',
  );

const redisPrefixOption = () =>
  new Option(
    '--redis-prefix <prefix>',
    'prefix of every Redis key, one per deployment (env REDIS_KEY_PREFIX; default stripe-events:)',
  );

/** How this program was started, so suggested commands can be pasted as they are. */
function selfCommand(): string {
  const script = process.argv[1] ?? '';
  if (path.basename(script) === 'stripe-events-mcp') return 'stripe-events-mcp';
  const rel = path.relative(process.cwd(), script);
  return `node ${rel && !rel.startsWith('..') ? rel : script}`;
}

type ServeCommandFlags = ServeFlags & AgentFlags & { agent?: boolean };

async function serve(flags: ServeCommandFlags): Promise<void> {
  const config = loadServeConfig(flags);
  // Checked before anything starts, so a missing key is one clear message and exit code 2.
  const agent = flags.agent ? loadAgentConfig(flags, process.env, config.model) : undefined;
  const logger = createLogger({ level: config.logLevel });
  const { startServer } = await import('./app.js');
  // The signal handlers go in before the server starts: a SIGTERM that arrives right after the
  // "listening" log (while start-up finishes its last steps) still shuts down cleanly, with exit 0.
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let stopping = false;
  const close = (running: NonNullable<typeof server>) =>
    running.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info('shutting down', { signal });
    if (server) void close(server);
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  server = await startServer(config, { logger, command: selfCommand(), agent });
  if (stopping) void close(server);
}

async function stdio(flags: ServeFlags): Promise<void> {
  const { keepStdoutForJsonRpc, runStdio } = await import('./mcp/stdio.js');
  // stdout carries JSON-RPC only, from the first byte on (importing writes nothing).
  keepStdoutForJsonRpc();
  const config = loadServeConfig(flags);
  const logger = createLogger({ level: config.logLevel });
  const { startServer } = await import('./app.js');
  const { composeServices } = await import('./compose/services.js');
  const session = await runStdio(config, {
    start: startServer,
    attach: (settings, log) => composeServices({ ...settings, ifMissing: 'create' }, log),
    logger,
    command: selfCommand(),
  });
  const stop = (signal: string) => {
    logger.info('shutting down', { signal });
    session.close().catch((error) => {
      logger.error('shutdown failed', { error });
      process.exitCode = 1;
    });
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  await session.closed;
  process.exit(process.exitCode ?? 0);
}

/** The autonomous loop's flags (`agent`, and `serve --agent`). */
function agentOptions(command: Command): Command {
  return command
    .option('--model <model>', `Claude model (env ANTHROPIC_MODEL; default ${DEFAULT_MODEL})`)
    .option('--concurrency <n>', 'events worked on at once (default 2)')
    .option('--max-turns <n>', 'Messages API requests per event (default 4)')
    .option('--max-tokens <n>', 'output tokens per request (default 1024)')
    .option('--lease-seconds <n>', 'how long a claim lasts, renewed while working (default 120)')
    .option('--dry-run', 'decide and record, dispatch nothing')
    .addHelpText(
      'after',
      '\nThe loop needs ANTHROPIC_API_KEY; ANTHROPIC_BASE_URL points the SDK at another endpoint.',
    );
}

/**
 * The queue's policy, stored with the queue: `serve` and `agent` set it at start, and every other
 * process on the store (an attached `stdio`, the `events` commands) follows what is stored.
 */
function policyOptions(command: Command): Command {
  return command.option(
    '--max-attempts <n>',
    'failed attempts before an event is dead; stored with the queue, which every process on it follows (default: as stored, else 5)',
  );
}

/** The flags `serve` and `stdio` share: both bind the webhook port on the same store. */
function serveOptions(command: Command): Command {
  return command
    .addOption(new Option('--host <host>', 'interface to bind (env HOST; default 127.0.0.1)'))
    .addOption(
      new Option('--port <port>', 'port to listen on, 0 for any free one (env PORT; default 8000)'),
    )
    .addOption(dataDirOption())
    .option('--tolerance <seconds>', 'accepted signature age in seconds (default 300)')
    .option('--max-body <size>', 'largest webhook body accepted, e.g. 2mb (default 2mb)')
    .option('--max-pending <n>', 'pending events held before answering 503 (default 100000)')
    .option('--headers-timeout <seconds>', 'time a client has to send its headers (default 10)')
    .option(
      '--request-timeout <seconds>',
      'time a client has to send its whole request (default 30)',
    )
    .option('--max-connections <n>', 'HTTP connections open at once (default 1024)')
    .option(
      '--max-body-memory <size>',
      'bytes of large webhook bodies received but not yet verified, at once; past it 503 (default 64mb)',
    )
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .addOption(
      new Option('--commit-mode <mode>', 'SQLite commit batching')
        .choices(['group', 'each'])
        .hideHelp(),
    )
    .option('--log-level <level>', 'debug, info, warn, error or silent (env LOG_LEVEL)')
    .option('--config <file.json>', 'catalog overrides, dispatch and approval settings')
    .option('--redact <kinds>', 'personal data to hide from models: email,phone,address,name')
    .option(
      '--enrich',
      "look up facts events lack (a dispute's customer, a failed invoice's email) in the Stripe API for the agent's decisions and get_event; needs STRIPE_SECRET_KEY",
    )
    .option(
      '--mcp-idle-timeout <seconds>',
      'close an MCP HTTP session idle this long (default 1800)',
    )
    .option(
      '--mcp-max-sessions <n>',
      'MCP HTTP sessions open at once; at the cap the least recently used idle one is closed (default 1000)',
    )
    .option(
      '--events-allow-loopback',
      'let MCP Events webhook subscriptions call back to loopback (http allowed there): for development and tests',
    )
    .option(
      '--backfill-on-start',
      'pull events missed while down from the Events API on start (default when STRIPE_SECRET_KEY is set)',
    )
    .option('--no-backfill-on-start', 'do not backfill on start')
    .option('--backfill-interval <minutes>', 'also backfill every this many minutes while running')
    .option(
      '--public-url <url>',
      'where people reach this server (behind a proxy), for the console links in notifications (env PUBLIC_URL)',
    )
    .addHelpText(
      'after',
      '\nEnvironment: STRIPE_WEBHOOK_SECRET (one or more whsec_…, comma-separated; without it a dev secret is created in the data dir).' +
        '\nSTRIPE_SECRET_KEY (optional): backfill from the Events API; STRIPE_API_BASE: another Stripe API origin.' +
        '\nMCP_AUTH_TOKEN: bearer token /mcp requires (required when --host is not a loopback address); MCP_ALLOWED_HOSTS, MCP_ALLOWED_ORIGINS: extra Host names and browser origins /mcp accepts (comma-separated).',
    );
}

export function buildProgram(): Command {
  const program = new Command('stripe-events-mcp')
    .description('Verified Stripe webhook events, durably queued as tool calls for AI agents.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .addHelpText(
      'after',
      '\nWith no command, serve runs: `stripe-events-mcp --port 8000` is `stripe-events-mcp serve --port 8000`.\n`stripe-events-mcp <command> --help` shows its flags.',
    );

  agentOptions(
    policyOptions(
      serveOptions(
        program
          .command('serve', { isDefault: true })
          .description(
            '(the default command) webhook ingress on POST /stripe/webhook, MCP Streamable HTTP at /mcp, /healthz and /metrics',
          )
          .option('--agent', 'also run the autonomous Claude loop (see `agent`)')
          // Words serve does not take are a mistyped command (`serv`, `evnets list`): the action
          // says so, instead of commander printing serve's whole help.
          .allowExcessArguments(),
      ),
    ),
  ).action((flags: ServeCommandFlags, command: Command) => {
    const [word] = command.args;
    if (word !== undefined) {
      const names = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
      throw new UsageError(unknownCommandMessage(word, [...names, 'help']));
    }
    return serve(flags);
  });

  agentOptions(
    policyOptions(
      serveOptions(
        program
          .command('agent')
          .description(
            'serve, with the autonomous Claude loop deciding and dispatching each event',
          ),
      ),
    ),
  ).action((flags: ServeCommandFlags) => serve({ ...flags, agent: true }));

  serveOptions(
    program
      .command('stdio')
      .description(
        'MCP over stdin/stdout (Claude Desktop); also receives webhooks, or attaches to the store when the port is taken',
      ),
  ).action(stdio);

  program
    .command('demo')
    .description(
      'the whole loop offline: server and agent on a throwaway data dir, a scripted model (nothing sent to Anthropic), test events',
    )
    .addOption(
      new Option('--port <port>', 'port to listen on, on 127.0.0.1 (default: a free one, printed)'),
    )
    .option(
      '--data-dir <dir>',
      'a new directory for the demo store, kept afterwards (default: a temporary one, removed at Ctrl-C); an existing one is refused',
    )
    .option('--log-level <level>', 'JSON logs: debug, info, warn, error or silent (default warn)')
    .addHelpText(
      'after',
      '\nNeeds no key, and refuses to run with a live Stripe key (sk_live_…, rk_live_…) in STRIPE_SECRET_KEY or ANTHROPIC_API_KEY.',
    )
    .action(async (options: DemoOptions) => {
      // Runs until Ctrl-C (SIGINT) or SIGTERM, which the demo handles: it stops and cleans up.
      await (await import('./cli/demo.js')).runDemo(options, process.env, selfCommand());
    });

  program
    .command('trigger <event-type>')
    .description('sign a realistic test event of a type and POST it to a running server')
    .option(
      '--set <path=value>',
      'override a field, e.g. --set data.object.amount=5000 (repeatable)',
      collect,
    )
    .option('--url <url>', `webhook URL (default ${DEFAULT_WEBHOOK_URL})`)
    .option(
      '--secret <whsec>',
      'secret to sign with (default: STRIPE_WEBHOOK_SECRET, else the dev secret of --data-dir)',
    )
    .addOption(dataDirOption())
    .action(async (type: string, options) => {
      const { runTrigger } = await import('./cli/trigger.js');
      process.exitCode = await runTrigger(type, options);
    });

  program
    .command('backfill')
    .description(
      "pull missed events from Stripe's Events API (last 30 days) through the same dedup as webhooks",
    )
    .option(
      '--since <when>',
      'where to start: a duration back from now (30m, 24h, 7d), an ISO date-time (2026-11-01T00:00Z), Unix seconds (1764547200), or an event id (evt_…) to walk forward from (default: the newest queued event less an hour, else 24h)',
    )
    .option('--types <a,b>', 'only these event types (default: every type the catalog maps)')
    .option('--dry-run', 'fetch and count, store nothing')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .option('--config <file.json>', 'apply catalog overrides from this config file')
    .addHelpText(
      'after',
      '\nNeeds STRIPE_SECRET_KEY (sk_… or a restricted rk_… key that can read Events); STRIPE_API_BASE points it at another API origin.',
    )
    .action(async (options) => {
      const { runBackfill } = await import('./cli/backfill.js');
      process.exitCode = await runBackfill(options);
    });

  program
    .command('rehearse')
    .description(
      "what the agent would have decided: replay a period's events through the decision step, dispatch nothing, write a report",
    )
    .option(
      '--since <when>',
      'a duration (30m, 24h, 7d), an ISO date-time, or evt_… (default 24h; with --from-store: every stored event)',
    )
    .option('--config <file.json>', 'catalog, approval, model and pricing to rehearse')
    .option(
      '--compare <other.json>',
      'also rehearse this config on the same events and report the differences',
    )
    .option(
      '--model <model>',
      `Claude model (env ANTHROPIC_MODEL; default: the config's model, else ${DEFAULT_MODEL})`,
    )
    .option('--concurrency <n>', 'events decided at once (default 4)')
    .option('--limit <n>', 'at most this many events')
    .option(
      '--max-cost-usd <usd>',
      'stop starting decisions once the estimated cost would pass this',
    )
    .option('--max-turns <n>', 'Messages API requests per event (default 4)')
    .option('--max-tokens <n>', 'output tokens per request (default 1024)')
    .option('--redact <kinds>', 'personal data to hide from the model: email,phone,address,name')
    .option(
      '--out <dir>',
      'a new folder for events.db, report.json and report.html (default: rehearsals/<time> in the data dir)',
    )
    .option(
      '--from-store',
      'rehearse the events stored in the data dir (read only) instead of fetching them',
    )
    .addOption(dataDirOption())
    .addHelpText(
      'after',
      '\nNeeds ANTHROPIC_API_KEY (ANTHROPIC_BASE_URL: another endpoint) and, unless --from-store, STRIPE_SECRET_KEY (STRIPE_API_BASE: another API origin).',
    )
    .action(async (options) => {
      const { runRehearse } = await import('./cli/rehearse.js');
      process.exitCode = await runRehearse(options);
    });

  program
    .command('catalog')
    .description("print the active catalog's tool definitions, ready to hand to an agent")
    .option('--format <format>', 'anthropic, openai or json (default json)')
    .option('--config <file.json>', 'apply catalog overrides from this config file')
    .action(async (options) => (await import('./cli/catalog.js')).printCatalog(options));

  const events = program.command('events').description('operator access to the stored events');
  events
    .command('list')
    .description('list stored events in arrival order (all statuses unless --status)')
    .option(
      '--status <status>',
      'pending, claimed, acked, dead or awaiting_approval (comma-separated)',
    )
    .option('--type <type>', 'only this event type, one of the catalog (repeatable)', collect)
    .option(
      '--outcome <outcome>',
      `only finished events that ended so: ${EVENT_OUTCOMES.join(', ')} (comma-separated)`,
    )
    .option('--limit <n>', 'at most this many')
    .option('--json', 'one JSON array of summaries')
    .option(
      '--config <file.json>',
      "the server's config file: its catalog overrides name the types and tools listed",
    )
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (options: ListOptions) => (await import('./cli/events.js')).eventsList(options));
  events
    .command('show <id>')
    .description('one event: its status and history, then its tool call and the event as received')
    .option('--json', 'one JSON object: the event, tool call, state and history')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (id: string, options: EventsOptions) =>
      (await import('./cli/events.js')).eventsShow(id, options),
    );
  events
    .command('ack <id>')
    .description('mark an event done, even one a worker holds (you are named in its history)')
    .option('--note <text>', 'why, kept in its history')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (id: string, options: EventsOptions & { note?: string }) =>
      (await import('./cli/events.js')).eventsAck(id, options),
    );
  events
    .command('approve <id>')
    .description(
      'approve the decided call of an event awaiting approval: it is dispatched as decided, then the event is acked',
    )
    .option(
      '--config <file.json>',
      "the server's config file: its dispatch sends the approved call to your handler (without it the call is only recorded in the history)",
    )
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .addHelpText(
      'after',
      '\nWithout --config nothing is sent anywhere: the approved call is recorded in the history and the event acked.',
    )
    .action(async (id: string, options: EventsOptions) =>
      (await import('./cli/events.js')).eventsApprove(id, options),
    );
  events
    .command('decide <id>')
    .description(
      "decide an event the agent handed to a person: one of its tool's actions and fields, checked like the model's decision, dispatched like an approved call",
    )
    .requiredOption('--action <action>', "one of the event's tool's actions (e.g. submit_evidence)")
    .option(
      '--set <field=value>',
      'a decision field, repeatable: --set rationale="…" --set evidence_summary="…"',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .option(
      '--config <file.json>',
      "the server's config file: its dispatch sends the call to your handler, its events the tools",
    )
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (id: string, options: DecideOptions) =>
      (await import('./cli/events.js')).eventsDecide(id, options),
    );
  events
    .command('handled <id>')
    .description('mark an event handled by hand: acked with your note, nothing dispatched')
    .requiredOption('--note <text>', 'what was done, kept in its history')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (id: string, options: EventsOptions & { note?: string }) =>
      (await import('./cli/events.js')).eventsHandled(id, options),
    );
  events
    .command('reject <id>')
    .description(
      'turn down the decided call of an event awaiting approval: nothing is dispatched, the reason is recorded, the event is acked',
    )
    .requiredOption('--reason <text>', 'why, kept in its history')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (id: string, options: ReasonOptions) =>
      (await import('./cli/events.js')).eventsReject(id, options),
    );
  events
    .command('nack <id>')
    .description(
      'give a pending event back as failed: an attempt counted, pending again (dead at the last attempt); not one awaiting approval (reject it)',
    )
    .requiredOption('--reason <text>', 'why it could not be handled, kept in its history')
    .option('--retry-in <seconds>', 'not handled again before this many seconds (default 0)')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (id: string, options: NackOptions) =>
      (await import('./cli/events.js')).eventsNack(id, options),
    );
  events
    .command('replay <id>')
    .description(
      'put a stored event back to pending, attempts reset (not while it is claimed or awaits approval)',
    )
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (id: string, options: EventsOptions) =>
      (await import('./cli/events.js')).eventsReplay(id, options),
    );

  program
    .command('pause')
    .description(
      'pause the agent loops on this store (every instance): no new claims, events wait pending',
    )
    .option('--reason <text>', 'why, shown in get_queue_status, the logs and the console')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (options: EventsOptions & { reason?: string }) =>
      (await import('./cli/events.js')).agentPause(options),
    );
  program
    .command('resume')
    .description(
      "lift the agent loops' store-wide pause (a person's, or the budget's: it comes back while the day's budget is spent)",
    )
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (options: EventsOptions) =>
      (await import('./cli/events.js')).agentResume(options),
    );

  const people = program
    .command('people')
    .description(
      'who may use the console, /mcp and the CLI under their own name, and what they may do',
    );
  people
    .command('add <name>')
    .description('add a person who can view or approve; prints their token once')
    .requiredOption('--can <role>', 'view (reads only) or approve (every change too)')
    .option('--json', 'print name, role and token as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (name: string, options: PeopleOptions & { can?: string }) =>
      (await import('./cli/people.js')).peopleAdd(name, options),
    );
  people
    .command('list')
    .description('the people of this store: name, role, when added (never a token)')
    .option('--json', 'one JSON array')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (options: PeopleOptions) =>
      (await import('./cli/people.js')).peopleList(options),
    );
  people
    .command('remove <name>')
    .description('remove a person: their token stops working on every instance within seconds')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .addOption(storeOption())
    .addOption(redisPrefixOption())
    .action(async (name: string, options: PeopleOptions) =>
      (await import('./cli/people.js')).peopleRemove(name, options),
    );

  oneLineUsageErrors(program);
  return program;
}

/**
 * A usage mistake commander finds (unknown option, missing or invalid value, unknown subcommand,
 * too many arguments) as one line and a pointer to the flags, e.g.
 * `unknown option '--prot'. Did you mean --port? (serve --help)`: commander's default follows the
 * message with the command's whole help, which scrolls the message itself off screen. Set on every
 * command, after all are built, because each reports its own mistakes and the pointer names it.
 * The exit code stays main's: 2 for any usage mistake.
 */
function oneLineUsageErrors(command: Command, names: readonly string[] = []): void {
  const pointer = names.length ? `(${names.join(' ')} --help)` : '(stripe-events-mcp --help)';
  command
    .showHelpAfterError(false)
    // commander's did-you-mean for options and subcommands, from the command's own flags and names
    .showSuggestionAfterError(true)
    .configureOutput({
      outputError: (text, write) => write(`stripe-events-mcp: ${usageLine(text)} ${pointer}\n`),
    });
  for (const sub of command.commands) oneLineUsageErrors(sub, [...names, sub.name()]);
}

/**
 * Commander's message as one sentence or more on one line:
 * `error: unknown option '--prot'\n(Did you mean --port?)\n` → `unknown option '--prot'. Did you mean --port?`
 */
function usageLine(text: string): string {
  return text
    .replace(/^error: /, '')
    .split('\n')
    .map((line) => line.trim().replace(/^\((.*)\)$/, '$1'))
    .filter((line) => line !== '')
    .map((line) => (/[.?!]$/.test(line) ? line : `${line}.`))
    .join(' ');
}

async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with code 0; usage mistakes are configuration errors.
      process.exit(error.exitCode === 0 ? 0 : EXIT_CONFIG);
    }
    fail(error);
  }
}

await main(process.argv);
