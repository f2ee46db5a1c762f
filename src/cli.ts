#!/usr/bin/env node
import path from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import { startServer } from './app.js';
import { printCatalog } from './cli/catalog.js';
import { eventsAck, eventsList, eventsReplay, eventsShow } from './cli/events.js';
import { DEFAULT_TRIGGER_URL, runTrigger } from './cli/trigger.js';
import { loadServeConfig, type ServeFlags } from './config/config.js';
import { AppError, ConfigError } from './errors.js';
import { createLogger } from './logger.js';

/** Exit codes: 0 ok, 1 runtime failure (e.g. a non-2xx answer), 2 bad configuration or usage. */
const EXIT_CONFIG = 2;

function fail(error: unknown): never {
  if (error instanceof ConfigError) {
    process.stderr.write(`stripe-events-mcp: ${error.message}\n`);
    process.exit(EXIT_CONFIG);
  }
  const message =
    error instanceof AppError || error instanceof Error ? error.message : String(error);
  process.stderr.write(`stripe-events-mcp: ${message}\n`);
  process.exit(1);
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

const dataDirOption = () =>
  new Option(
    '--data-dir <dir>',
    'where the event store lives (env STRIPE_EVENTS_DATA_DIR; default: a per-user data directory)',
  );

/** How this program was started, so suggested commands can be pasted as they are. */
function selfCommand(): string {
  const script = process.argv[1] ?? '';
  if (path.basename(script) === 'stripe-events-mcp') return 'stripe-events-mcp';
  const rel = path.relative(process.cwd(), script);
  return `node ${rel && !rel.startsWith('..') ? rel : script}`;
}

async function serve(flags: ServeFlags): Promise<void> {
  const config = loadServeConfig(flags);
  const logger = createLogger({ level: config.logLevel });
  const server = await startServer(config, { logger, command: selfCommand() });
  const stop = (signal: string) => {
    logger.info('shutting down', { signal });
    server.close().then(
      () => process.exit(0),
      (error) => {
        logger.error('shutdown failed', { error });
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

export function buildProgram(): Command {
  const program = new Command('stripe-events-mcp')
    .description('Verified Stripe webhook events, durably queued as tool calls for AI agents.')
    .showHelpAfterError()
    .exitOverride();

  program
    .command('serve', { isDefault: true })
    .description('webhook ingress on POST /stripe/webhook, with /healthz and /metrics')
    .addOption(new Option('--host <host>', 'interface to bind (env HOST; default 127.0.0.1)'))
    .addOption(
      new Option('--port <port>', 'port to listen on, 0 for any free one (env PORT; default 8000)'),
    )
    .addOption(dataDirOption())
    .option('--tolerance <seconds>', 'accepted signature age in seconds (default 300)')
    .option('--max-body <size>', 'largest webhook body accepted, e.g. 2mb (default 2mb)')
    .option('--max-pending <n>', 'pending events held before answering 503 (default 100000)')
    .option('--store <kind>', 'event store: sqlite (default)')
    .addOption(
      new Option('--commit-mode <mode>', 'SQLite commit batching')
        .choices(['group', 'each'])
        .hideHelp(),
    )
    .option('--log-level <level>', 'debug, info, warn, error or silent (env LOG_LEVEL)')
    .option('--config <file.json>', 'catalog overrides, dispatch and approval settings')
    .option('--redact <kinds>', 'personal data to hide from models: email,phone,address,name')
    .addHelpText(
      'after',
      '\nEnvironment: STRIPE_WEBHOOK_SECRET (one or more whsec_…, comma-separated; without it a dev secret is created in the data dir).',
    )
    .action(serve);

  program
    .command('trigger <event-type>')
    .description('sign a realistic test event of a type and POST it to a running server')
    .option(
      '--set <path=value>',
      'override a field, e.g. --set data.object.amount=5000 (repeatable)',
      collect,
    )
    .option('--url <url>', `webhook URL (default ${DEFAULT_TRIGGER_URL})`)
    .option(
      '--secret <whsec>',
      'secret to sign with (default: STRIPE_WEBHOOK_SECRET, else the dev secret of --data-dir)',
    )
    .addOption(dataDirOption())
    .action(async (type: string, options) => {
      process.exitCode = await runTrigger(type, options);
    });

  program
    .command('catalog')
    .description("print the active catalog's tool definitions, ready to hand to an agent")
    .option('--format <format>', 'anthropic, openai or json (default json)')
    .option('--config <file.json>', 'apply catalog overrides from this config file')
    .action(printCatalog);

  const events = program.command('events').description('operator access to the stored events');
  events
    .command('list')
    .description('list stored events in arrival order (all statuses unless --status)')
    .option(
      '--status <status>',
      'pending, claimed, acked, dead or awaiting_approval (comma-separated)',
    )
    .option('--type <type>', 'only this event type (repeatable)', collect)
    .option('--limit <n>', 'at most this many')
    .option('--json', 'one JSON array of summaries')
    .addOption(dataDirOption())
    .action(eventsList);
  events
    .command('show <id>')
    .description('one event as received, with its tool call, state and history (JSON)')
    .option('--json', 'JSON (the default for show)')
    .addOption(dataDirOption())
    .action(eventsShow);
  events
    .command('ack <id>')
    .description('mark an event done')
    .option('--note <text>', 'why, kept in its history')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .action(eventsAck);
  events
    .command('replay <id>')
    .description('put a stored event back to pending, attempts reset')
    .option('--json', 'print the result as JSON')
    .addOption(dataDirOption())
    .action(eventsReplay);

  return program;
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
