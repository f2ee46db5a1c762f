import { thresholdsText, type DecisionRow, type PolicySummary, type Report } from './report.js';
import { escapeHtml } from '../html.js';

/**
 * report.html: one self-contained page (inline style, inline SVG, no script, nothing fetched).
 * Every string that came from an event or a model (ids, rationales, customer text quoted in them)
 * goes through `esc`.
 */

const FIXED: Record<string, string> = {
  no_action: '#9aa5b1',
  ask_a_person: '#e0a526',
  invalid: '#d64545',
};
const PALETTE = [
  '#2f6fdb',
  '#1f9e89',
  '#7b5cd6',
  '#e5673d',
  '#3aa1d6',
  '#8c9e1f',
  '#c2457e',
  '#5c6bc0',
];

function colorOf(action: string, order: string[]): string {
  return FIXED[action] ?? PALETTE[order.indexOf(action) % PALETTE.length]!;
}

function dollars(value: number | null | undefined): string {
  if (value === null || value === undefined) return 'n/a';
  return value < 0.01 && value > 0 ? `$${value.toFixed(6)}` : `$${value.toFixed(4)}`;
}

/** Stacked horizontal bars: per tool, its events split by action. */
function actionMixChart(summary: PolicySummary, title: string, palette: string[]): string {
  const tools = Object.entries(summary.by_tool).sort((a, b) => a[0].localeCompare(b[0]));
  if (tools.length === 0) return `<p>${escapeHtml(title)}: no events.</p>`;
  const actions = [...new Set(tools.flatMap(([, t]) => Object.keys(t.actions)))].sort();
  const decided = palette;
  const max = Math.max(...tools.map(([, t]) => t.events));
  const labelW = 210;
  const barW = 460;
  const rowH = 26;
  const height = tools.length * rowH + 40;
  const rows = tools
    .map(([tool, t], i) => {
      let x = labelW;
      const y = 10 + i * rowH;
      const segments = Object.entries(t.actions)
        .sort((a, b) => a[0].localeCompare(b[0]))
        .map(([action, n]) => {
          const w = (n / max) * barW;
          const rect = `<rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="18" fill="${colorOf(action, decided)}"><title>${escapeHtml(tool)} · ${escapeHtml(action)}: ${n}</title></rect>`;
          x += w;
          return rect;
        })
        .join('');
      return `<text x="${labelW - 8}" y="${y + 13}" text-anchor="end">${escapeHtml(tool)}</text>${segments}<text x="${(x + 6).toFixed(1)}" y="${y + 13}">${t.events}</text>`;
    })
    .join('');
  let lx = 10;
  const legend = actions
    .map((action) => {
      const item = `<rect x="${lx}" y="${height - 22}" width="12" height="12" fill="${colorOf(action, decided)}"/><text x="${lx + 16}" y="${height - 12}">${escapeHtml(action)}</text>`;
      lx += 24 + action.length * 7;
      return item;
    })
    .join('');
  const width = Math.max(labelW + barW + 60, lx + 10);
  return `<figure><figcaption>${escapeHtml(title)}</figcaption><svg role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${rows}${legend}</svg></figure>`;
}

/** Cost per tool (and per config when comparing), as bars. */
function costChart(report: Report): string {
  const series: { name: string; summary: PolicySummary }[] = [{ name: 'primary', summary: report }];
  if (report.compare) series.push({ name: 'compare', summary: report.compare });
  if (series.some((s) => s.summary.cost_usd === null)) {
    return `<p>Cost: not available (${escapeHtml(series.find((s) => s.summary.cost_usd === null)?.summary.cost_note)}).</p>`;
  }
  const costByTool = (
    rows: DecisionRow[],
    pick: (r: DecisionRow) => { tool: string | null; cost_usd: number | null } | undefined,
  ) => {
    const out: Record<string, number> = {};
    for (const r of rows) {
      const o = pick(r);
      if (o?.tool) out[o.tool] = (out[o.tool] ?? 0) + (o.cost_usd ?? 0);
    }
    return out;
  };
  const perSeries = [
    costByTool(report.decisions, (r) => r),
    ...(report.compare ? [costByTool(report.decisions, (r) => r.compare)] : []),
  ];
  const tools = [...new Set(perSeries.flatMap((s) => Object.keys(s)))].sort();
  const max = Math.max(1e-12, ...perSeries.flatMap((s) => Object.values(s)));
  const labelW = 210;
  const barW = 400;
  const barH = 14;
  const groupH = series.length * (barH + 2) + 10;
  const height = tools.length * groupH + 14 + series.length * 20;
  const colors = ['#2f6fdb', '#e5673d'];
  const bars = tools
    .map((tool, i) => {
      const y0 = 8 + i * groupH;
      const label = `<text x="${labelW - 8}" y="${y0 + 12}" text-anchor="end">${escapeHtml(tool)}</text>`;
      return (
        label +
        perSeries
          .map((s, k) => {
            const v = s[tool] ?? 0;
            const y = y0 + k * (barH + 2);
            return `<rect x="${labelW}" y="${y}" width="${((v / max) * barW).toFixed(1)}" height="${barH}" fill="${colors[k]}"><title>${escapeHtml(series[k]!.name)} ${escapeHtml(tool)}: ${dollars(v)}</title></rect><text x="${(labelW + (v / max) * barW + 6).toFixed(1)}" y="${y + 11}">${dollars(v)}</text>`;
          })
          .join('')
      );
    })
    .join('');
  const legend = series
    .map(
      (s, k) =>
        `<rect x="10" y="${height - 20 * (series.length - k) - 2}" width="12" height="12" fill="${colors[k]}"/><text x="26" y="${height - 20 * (series.length - k) + 8}">${escapeHtml(s.name)} (${escapeHtml(s.summary.config.model)}): ${dollars(s.summary.cost_usd)}</text>`,
    )
    .join('');
  const width = labelW + barW + 110;
  return `<figure><figcaption>Cost per tool</figcaption><svg role="img" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">${bars}${legend}</svg></figure>`;
}

/** A histogram of decision latencies with the p50 and p95 marked. */
function latencyChart(report: Report): string {
  const values = report.decisions.map((d) => d.latency_ms);
  if (values.length === 0) return '<p>Latency: no decisions.</p>';
  const buckets = 12;
  const max = Math.max(1, ...values);
  const step = max / buckets;
  const counts = new Array<number>(buckets).fill(0);
  for (const v of values) counts[Math.min(buckets - 1, Math.floor(v / step))]! += 1;
  const top = Math.max(...counts);
  const w = 600;
  const h = 180;
  const left = 40;
  const plotH = h - 50;
  const bw = (w - left - 10) / buckets;
  const bars = counts
    .map((n, i) => {
      const bh = (n / top) * plotH;
      return `<rect x="${(left + i * bw).toFixed(1)}" y="${(10 + plotH - bh).toFixed(1)}" width="${(bw - 2).toFixed(1)}" height="${bh.toFixed(1)}" fill="#3aa1d6"><title>${Math.round(i * step)}–${Math.round((i + 1) * step)} ms: ${n}</title></rect>`;
    })
    .join('');
  const mark = (label: string, v: number | null, color: string) => {
    if (v === null) return '';
    const x = left + (Math.min(v, max) / max) * (w - left - 10);
    // Near the right edge the label goes left of its line, so it stays inside the chart.
    const right = x > w - 110;
    const y = label === 'p50' ? 18 : 32;
    return `<line x1="${x.toFixed(1)}" y1="6" x2="${x.toFixed(1)}" y2="${10 + plotH}" stroke="${color}" stroke-width="2"/><text x="${(right ? x - 4 : x + 4).toFixed(1)}" y="${y}" text-anchor="${right ? 'end' : 'start'}" fill="${color}">${label} ${v} ms</text>`;
  };
  const axis = `<line x1="${left}" y1="${10 + plotH}" x2="${w - 10}" y2="${10 + plotH}" stroke="#555"/><text x="${left}" y="${h - 22}">0 ms</text><text x="${w - 10}" y="${h - 22}" text-anchor="end">${Math.round(max)} ms</text><text x="${left}" y="${h - 6}">decisions: ${values.length}</text>`;
  return `<figure><figcaption>Decision latency (primary)</figcaption><svg role="img" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">${bars}${axis}${mark('p50', report.latency_ms.p50, '#1f7a3a')}${mark('p95', report.latency_ms.p95, '#b3261e')}</svg></figure>`;
}

function summaryTable(report: Report): string {
  const cols: { name: string; s: PolicySummary }[] = [{ name: 'primary', s: report }];
  if (report.compare) cols.push({ name: 'compare', s: report.compare });
  const line = (label: string, cell: (s: PolicySummary) => unknown) =>
    `<tr><th>${escapeHtml(label)}</th>${cols.map((c) => `<td>${escapeHtml(cell(c.s))}</td>`).join('')}</tr>`;
  return `<table class="summary"><tr><th></th>${cols.map((c) => `<th>${escapeHtml(c.name)}</th>`).join('')}</tr>${[
    line('config', (s) => s.config.file),
    line('model', (s) => s.config.model),
    line('events', (s) => s.events),
    line('decided', (s) => s.decided),
    line('no action', (s) => s.no_action),
    line('ask a person', (s) => s.ask_a_person),
    line('invalid', (s) => s.invalid),
    line('would wait for approval', (s) => s.approvals),
    line('approval amounts', (s) => thresholdsText(s.config.approval) ?? 'not gated by amount'),
    line('tokens in / out', (s) => `${s.tokens.input} / ${s.tokens.output}`),
    line('cost', (s) => (s.cost_usd === null ? `n/a: ${s.cost_note}` : dollars(s.cost_usd))),
    line('latency p50 / p95', (s) => `${s.latency_ms.p50 ?? '–'} / ${s.latency_ms.p95 ?? '–'} ms`),
  ].join('')}</table>`;
}

function decisionsTable(report: Report): string {
  const compare = report.compare !== undefined;
  const head = `<tr><th>event</th><th>type</th><th>amount</th><th>tool</th><th>decision</th><th>approval</th><th>rationale</th><th>tokens</th><th>cost</th><th>ms</th>${compare ? '<th>compare decision</th><th>compare approval</th><th>compare rationale</th>' : ''}</tr>`;
  const rows = report.decisions
    .map((d) => {
      const differs = compare && (d.compare?.tool !== d.tool || d.compare?.action !== d.action);
      return `<tr${differs ? ' class="differs"' : ''}><td><code>${escapeHtml(d.event_id)}</code></td><td>${escapeHtml(d.type)}</td><td class="amount">${escapeHtml(d.amount_display ?? '–')}</td><td>${escapeHtml(d.tool ?? '–')}</td><td>${escapeHtml(d.action)}</td><td>${escapeHtml(d.approval ?? '')}</td><td class="why">${escapeHtml(d.rationale ?? '')}</td><td>${d.tokens.input + d.tokens.output}</td><td>${escapeHtml(dollars(d.cost_usd))}</td><td>${d.latency_ms}</td>${
        compare
          ? `<td>${escapeHtml(d.compare?.action ?? '')}</td><td>${escapeHtml(d.compare?.approval ?? '')}</td><td class="why">${escapeHtml(d.compare?.rationale ?? '')}</td>`
          : ''
      }</tr>`;
    })
    .join('');
  return `<table class="decisions">${head}${rows}</table>`;
}

const STYLE = `body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1d2329;max-width:1400px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}svg text{font:12px system-ui,sans-serif;fill:#1d2329}
figure{margin:12px 0}figcaption{font-weight:600;margin-bottom:4px}table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #d5dbe1;padding:4px 8px;text-align:left;vertical-align:top}
table.decisions td.why{max-width:420px}td.amount{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}tr.differs{background:#fff4e0}.note{color:#5b6670}code{font-size:12px}`;

/** Decided actions in one order for every chart, so an action has one colour on the page. */
function actionOrder(report: Report): string[] {
  const all = [report, ...(report.compare ? [report.compare] : [])].flatMap((s) =>
    Object.values(s.by_tool).flatMap((t) => Object.keys(t.actions)),
  );
  return [...new Set(all)].filter((a) => !(a in FIXED)).sort();
}

export function renderHtml(report: Report): string {
  const palette = actionOrder(report);
  const stopped =
    report.stopped === null
      ? 'ran to the end'
      : report.stopped === 'budget'
        ? 'stopped early: the next decisions would have passed --max-cost-usd'
        : report.stopped === 'limit'
          ? 'stopped at --limit: more events were there'
          : report.stopped === 'interrupted'
            ? 'interrupted: the events decided before it'
            : 'stopped: the model API failed';
  const compare = report.compare
    ? `<h2>Compare</h2><p>${report.compare.differ} of ${report.compare.differ + report.compare.same} events decided differently; cost difference ${escapeHtml(
        report.compare.cost_difference_usd === null
          ? 'n/a'
          : `${report.compare.cost_difference_usd >= 0 ? '+' : '-'}${dollars(Math.abs(report.compare.cost_difference_usd))}`,
      )} (compare − primary).</p>${actionMixChart(report.compare, 'Action mix per tool (compare)', palette)}`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Rehearsal ${escapeHtml(report.generated_at)}</title><style>${STYLE}</style></head><body>
<h1>Rehearsal of ${report.events} events</h1>
<p class="note">Generated ${escapeHtml(report.generated_at)} · ${escapeHtml(JSON.stringify(report.source))} · ${escapeHtml(stopped)}. Nothing was dispatched and the live queue was not touched.</p>
${summaryTable(report)}
<h2>Actions</h2>${actionMixChart(report, 'Action mix per tool (primary)', palette)}
<h2>Cost</h2>${costChart(report)}
<h2>Latency</h2>${latencyChart(report)}
${compare}
<h2>Every decision</h2>${decisionsTable(report)}
</body></html>
`;
}
