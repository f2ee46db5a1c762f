import { cleanModelText } from '../catalog/model-text.js';

/**
 * Why a conversation ended without a decision, in words: one sentence a person reads on the queue
 * (the nack's reason, so `last_error`), and the detail — every request's tool calls and what was
 * wrong with them — for the history. Both are built from what decide() saw (the zod issues of the
 * inputs it parsed, the tools the model named, how each reply stopped), not from the error text
 * the SDK's runner hands the model: that is a pretty-printed issue array, meant for a model.
 *
 * Pure: no I/O, no clock; the model's values are quoted, bounded and cleaned of hidden characters.
 */

/** The fields of a zod issue this reads (zod 4's shapes; others fall back to the message). */
export interface Issue {
  code: string;
  path: readonly PropertyKey[];
  message: string;
  values?: readonly unknown[];
  expected?: string;
  origin?: string;
  minimum?: number | bigint;
  maximum?: number | bigint;
  inclusive?: boolean;
  keys?: readonly string[];
  format?: string;
}

/** One tool call of a request that was answered with an error. */
export type ToolProblem =
  /** The input failed the tool's schema. */
  | { kind: 'invalid'; tool: string; input: unknown; issues: readonly Issue[] }
  /** The model named a tool it was not offered. */
  | { kind: 'unknown_tool'; tool: string; input: unknown }
  /** Anything else the call was answered with as an error. */
  | { kind: 'error'; tool: string; input: unknown; error: string };

/** One Messages API request of a decision that did not come to one. */
export interface Turn {
  /** The failed tool calls of its reply; empty when the model called no tool. */
  problems: readonly ToolProblem[];
  stopReason: string | null;
  /** What the model wrote besides tool calls (shown in the detail when it called none). */
  text?: string;
}

/** Problems named in one sentence; more are counted. */
const MAX_PARTS = 3;
/** Allowed values listed; more are counted. */
const MAX_VALUES = 8;
/** A model-written value quoted in a sentence. */
const MAX_QUOTED = 60;
const MAX_SENTENCE = 500;
/** The detail as stored in the history, and one request's share of it. */
export const MAX_DETAIL = 2000;
const MAX_TURN_DETAIL = 800;
const MAX_INPUT_SHOWN = 400;

/** A value the model sent: a string in quotes, anything else as JSON, bounded either way. */
function quoted(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(cleanModelText(value, MAX_QUOTED));
  return cleanModelText(JSON.stringify(value) ?? String(value), MAX_QUOTED);
}

/** `offer.percent_off`, `items[0].id`; the empty path is the input as a whole. */
function pathText(path: readonly PropertyKey[]): string {
  return path
    .map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`))
    .join('');
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** What a value is, in words: `a string`, `a number`, `null`, `a list`. */
function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
    case 'bigint':
      return 'a number';
    case 'boolean':
      return 'true or false';
    case 'object':
      return 'an object';
    default:
      return String(typeof value);
  }
}

/** What zod expected, in the same words. */
function expectedText(expected: string | undefined): string {
  switch (expected) {
    case undefined:
      return 'something else';
    case 'string':
      return 'a string';
    case 'number':
    case 'bigint':
      return 'a number';
    case 'int':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'array':
      return 'a list';
    case 'object':
      return 'an object';
    case 'null':
      return 'null';
    default:
      return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
  }
}

function allowedText(values: readonly unknown[]): string {
  const shown = values
    .slice(0, MAX_VALUES)
    .map((v) => (typeof v === 'string' ? v : JSON.stringify(v)));
  const more = values.length > MAX_VALUES ? ` and ${values.length - MAX_VALUES} more` : '';
  return `${shown.join(', ')}${more}`;
}

function boundText(issue: Issue, field: string, value: unknown, small: boolean): string {
  const limit = String(small ? issue.minimum : issue.maximum);
  const strict = issue.inclusive === false;
  const word = small ? (strict ? 'more than' : 'at least') : strict ? 'less than' : 'at most';
  switch (issue.origin) {
    case 'string': {
      if (small && limit === '1' && !strict) return `the model left "${field}" empty`;
      const length = typeof value === 'string' ? Array.from(value).length : null;
      return `"${field}" must be ${word} ${limit} characters${length === null ? '' : `, the model sent ${length}`}`;
    }
    case 'array':
    case 'set': {
      const count = Array.isArray(value) ? value.length : null;
      const items = limit === '1' ? 'item' : 'items';
      return `"${field}" must have ${word} ${limit} ${items}${count === null ? '' : `, the model sent ${count}`}`;
    }
    default:
      return `"${field}" must be ${word} ${limit}${value === undefined ? '' : `, the model sent ${quoted(value)}`}`;
  }
}

/** One zod issue of a tool's input, as a clause a person reads. */
export function issueText(issue: Issue, input: unknown, tool?: string): string {
  const field = pathText(issue.path);
  const value = valueAt(input, issue.path);
  switch (issue.code) {
    case 'invalid_value':
    case 'invalid_enum_value': {
      const values = issue.values ?? [];
      const allowed = values.length ? `; allowed: ${allowedText(values)}` : '';
      if (field === 'action') return `the model chose action ${quoted(value)}${allowed}`;
      if (field === '') return `the model sent ${quoted(value)}${allowed}`;
      return `the model set "${field}" to ${quoted(value)}${allowed}`;
    }
    case 'invalid_type':
      if (field === '') {
        return `the model sent ${kindOf(value)} instead of ${expectedText(issue.expected)}`;
      }
      if (value === undefined) return `the model left out "${field}"`;
      return `"${field}" must be ${expectedText(issue.expected)}, the model sent ${kindOf(value)}`;
    case 'too_small':
      return boundText(issue, field, value, true);
    case 'too_big':
      return boundText(issue, field, value, false);
    case 'unrecognized_keys': {
      const keys = (issue.keys ?? []).slice(0, MAX_VALUES).map((k) => quoted(k));
      const where = field === '' ? (tool ?? 'the tool') : `"${field}"`;
      return `the model added ${keys.join(', ')}, which ${where} does not take`;
    }
    case 'invalid_format': {
      const format = issue.format === 'email' ? 'an email address' : `in ${issue.format} format`;
      return `"${field}" must be ${format}, the model sent ${quoted(value)}`;
    }
    default: {
      const message = cleanModelText(issue.message, 200);
      return field === '' ? message : `"${field}": ${message}`;
    }
  }
}

function problemClauses(problem: ToolProblem): string[] {
  switch (problem.kind) {
    case 'invalid':
      return problem.issues.length
        ? problem.issues.map((i) => issueText(i, problem.input, problem.tool))
        : [`the model's call of ${problem.tool} was refused`];
    case 'unknown_tool':
      return [`the model called ${quoted(problem.tool)}, which is not one of its tools`];
    case 'error':
      return [`the model's call of ${problem.tool} failed: ${cleanModelText(problem.error, 200)}`];
  }
}

/** How a reply without a tool call ended, in words. */
function stoppedText(stopReason: string | null): string {
  switch (stopReason) {
    case null:
    case 'end_turn':
    case 'stop_sequence':
    case 'tool_use':
      return 'the model answered without choosing an action';
    case 'max_tokens':
      return 'the model ran out of tokens (max_tokens) before choosing an action';
    case 'refusal':
      return 'the model refused to decide';
    default:
      return `the model stopped (${cleanModelText(stopReason, 40)}) without choosing an action`;
  }
}

function tries(n: number): string {
  return `${n} ${n === 1 ? 'try' : 'tries'}`;
}

/**
 * The sentence for `last_error`: what was wrong with the last request's reply (the one the
 * conversation ended on), and how many requests were made. Examples:
 * `the model chose action "nuke_it_from_orbit"; allowed: accept, submit_evidence, escalate_to_human (4 tries)`,
 * `the model left out "rationale" (1 try)`,
 * `"amount_cents" must be a number, the model sent a string (2 tries)`,
 * `the model answered without choosing an action (4 tries)`.
 */
export function failureSentence(turns: readonly Turn[]): string {
  const last = turns.at(-1);
  if (!last) return 'the model made no decision';
  let text: string;
  if (last.problems.length === 0) {
    text = stoppedText(last.stopReason);
  } else {
    const clauses = [...new Set(last.problems.flatMap(problemClauses))];
    const more = clauses.length - MAX_PARTS;
    text =
      clauses.slice(0, MAX_PARTS).join('; ') +
      (more > 0 ? `; and ${more} more problem${more === 1 ? '' : 's'}` : '');
  }
  return cleanModelText(`${text} (${tries(turns.length)})`, MAX_SENTENCE);
}

function inputText(input: unknown): string {
  let json: string;
  try {
    json = JSON.stringify(input) ?? String(input);
  } catch {
    json = String(input);
  }
  return cleanModelText(json, MAX_INPUT_SHOWN);
}

function issueDetail(issue: Issue): string {
  const field = pathText(issue.path);
  return `${field || '(input)'}: ${issue.message} [${issue.code}]`;
}

function turnDetail(turn: Turn, n: number): string {
  if (turn.problems.length === 0) {
    const said = turn.text?.trim() ? `; it wrote: ${turn.text.trim()}` : '';
    return `request ${n}: no tool call (stop_reason ${turn.stopReason ?? 'none'})${said}`;
  }
  const calls = turn.problems.map((p) => {
    const call = `${p.tool}(${inputText(p.input)})`;
    switch (p.kind) {
      case 'invalid':
        return `${call} → ${p.issues.map(issueDetail).join('; ') || 'refused'}`;
      case 'unknown_tool':
        return `${call} → no such tool`;
      case 'error':
        return `${call} → ${p.error}`;
    }
  });
  return `request ${n}: ${calls.join(' | ')}`;
}

/**
 * Every request's failed calls — the tool, the input the model sent (bounded), and each issue with
 * zod's own words and code — one line per request, for the decision entry's note. At most
 * MAX_DETAIL characters: when it is longer the earliest requests give way, since the last one is
 * what the conversation ended on.
 */
export function failureDetail(turns: readonly Turn[]): string {
  if (turns.length === 0) return 'the model made no decision';
  const lines = turns.map((t, i) => cleanModelText(turnDetail(t, i + 1), MAX_TURN_DETAIL));
  let kept = lines;
  let dropped = 0;
  const size = (l: readonly string[]) => l.reduce((n, s) => n + s.length + 1, 0);
  while (kept.length > 1 && size(kept) + 40 > MAX_DETAIL) {
    kept = kept.slice(1);
    dropped += 1;
  }
  const head = dropped ? [`(${dropped} earlier request${dropped === 1 ? '' : 's'} left out)`] : [];
  return cleanModelText([...head, ...kept].join('\n'), MAX_DETAIL);
}
