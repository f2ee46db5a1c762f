/**
 * Money as people and models read it (issue #20): an amount in its currency, with Stripe's minor
 * units. Stripe sends every amount as an integer in the currency's smallest unit — 412000 usd is
 * $4,120.00, 50000 jpy is ¥50,000, 1500 bhd is BHD 1.500 — and a bare integer read by a person (or
 * a model) is an error waiting to happen: the same 50000 is $500 or ¥50,000. So wherever an amount
 * is shown, it goes through here; structured output (JSON, tool results, attributes a program
 * reads) keeps the integer, and may carry the formatted text beside it.
 *
 * A shared leaf: it imports nothing of the project, so every layer may use it.
 */

/**
 * Stripe's exceptions to "two decimals", from its currencies page (docs.stripe.com/currencies,
 * the "Zero-decimal currencies" and "Three-decimal currencies" sections). Every other currency
 * Stripe supports has two. This is the one copy of the list in the project: the prompt rendering,
 * the console, the CLI, MCP and the approval thresholds all read amounts through it.
 */
const ZERO_DECIMAL: ReadonlySet<string> = new Set([
  'BIF',
  'CLP',
  'DJF',
  'GNF',
  'JPY',
  'KMF',
  'KRW',
  'MGA',
  'PYG',
  'RWF',
  'UGX',
  'VND',
  'VUV',
  'XAF',
  'XOF',
  'XPF',
]);
const THREE_DECIMAL: ReadonlySet<string> = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

/** How many decimals Stripe's minor unit has in `currency` (any case): 0, 2 or 3. */
export function minorUnitDigits(currency: string): 0 | 2 | 3 {
  const code = currency.trim().toUpperCase();
  if (ZERO_DECIMAL.has(code)) return 0;
  if (THREE_DECIMAL.has(code)) return 3;
  return 2;
}

let known: ReadonlySet<string> | null = null;

/**
 * The ISO 4217 codes this runtime's Intl knows. Intl formats any well-formed three-letter code
 * without complaint ("XYZ 1,234.56"), so a made-up code would read like a real currency: only the
 * known ones get Intl's currency style.
 */
function knownCurrency(code: string): boolean {
  known ??= new Set(Intl.supportedValuesOf('currency'));
  return known.has(code);
}

/** Built once per code (a NumberFormat is costly to make, cheap to use); bounded by Intl's list. */
const formatters = new Map<string, Intl.NumberFormat>();

function currencyFormat(code: string, digits: number): Intl.NumberFormat {
  let format = formatters.get(code);
  if (!format) {
    format = new Intl.NumberFormat('en-US', {
      style: 'currency',
      currency: code,
      // Stripe's exponent, not Intl's own idea of the currency (which may differ from Stripe's).
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    formatters.set(code, format);
  }
  return format;
}

const plainFormats = new Map<number, Intl.NumberFormat>();

function plainFormat(digits: number): Intl.NumberFormat {
  let format = plainFormats.get(digits);
  if (!format) {
    format = new Intl.NumberFormat('en-US', {
      minimumFractionDigits: digits,
      maximumFractionDigits: digits,
    });
    plainFormats.set(digits, format);
  }
  return format;
}

/**
 * An amount in minor units, formatted in its currency (en-US conventions, Stripe's decimals):
 * `formatAmount(412000, 'usd')` → `$4,120.00`, `(50000, 'jpy')` → `¥50,000`, `(1500, 'bhd')` →
 * `BHD 1.500`, `(-412000, 'usd')` → `-$4,120.00`. A code Intl does not know, or a malformed one,
 * never throws: `1,234.56 XYZ` (two decimals), the code reduced to letters and digits. Intl's
 * no-break space is written as a plain space, so the text greps and compares as it reads.
 */
export function formatAmount(minor: number, currency: string): string {
  const code = currency.trim().toUpperCase();
  const shownCode = code.replace(/[^A-Z0-9]/g, '').slice(0, 8);
  if (!Number.isFinite(minor)) return `${String(minor)} ${shownCode}`.trim();
  const digits = minorUnitDigits(code);
  // -0 would print as "-$0.00".
  const major = (minor === 0 ? 0 : minor) / 10 ** digits;
  if (/^[A-Z]{3}$/.test(code) && knownCurrency(code)) {
    return currencyFormat(code, digits)
      .format(major)
      .replace(/\u00a0/g, ' ');
  }
  const number = plainFormat(digits).format(major);
  return shownCode ? `${number} ${shownCode}` : number;
}

/**
 * `formatAmount` for values read from a tool call or an event, where either part may be missing:
 * null unless `minor` is a finite number and `currency` a non-empty string.
 */
export function formatAmountOrNull(minor: unknown, currency: unknown): string | null {
  if (typeof minor !== 'number' || !Number.isFinite(minor)) return null;
  if (typeof currency !== 'string' || currency.trim() === '') return null;
  return formatAmount(minor, currency);
}

/** The `amount` of a tool call's input (every catalog tool has `amount` and `currency`), formatted. */
export function callAmount(
  input: Readonly<Record<string, unknown>> | null | undefined,
): string | null {
  if (!input) return null;
  return formatAmountOrNull(input.amount, input.currency);
}
