import type { Notice } from './notice.js';

/**
 * A notice as a Slack incoming-webhook message (mrkdwn). Every interpolated value is escaped the
 * way Slack asks (`&` `<` `>` as entities), so customer-written text such as `<!channel>` or
 * `<https://evil|click>` shows as typed and cannot become a mention or a link. The only link is
 * the console page, built from the public URL and the percent-encoded event id.
 */
export function escapeMrkdwn(value: unknown): string {
  return String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** A link target inside `<…|…>`: `|`, `<` and `>` cannot occur in it (the id is encoded). */
function linkTarget(url: string): string {
  return url.replace(/[|<>]/g, (c) => encodeURIComponent(c)).replace(/&/g, '&amp;');
}

export function slackMessage(notice: Notice): { text: string } {
  const lines: string[] = [`*${escapeMrkdwn(notice.title)}*`];
  const e = notice.event;
  if (e) {
    const head = [e.tool, e.action].filter((x): x is string => !!x).map(escapeMrkdwn);
    lines.push(`${escapeMrkdwn(e.type)}${head.length > 0 ? ` · ${head.join(' → ')}` : ''}`);
    if (e.amount) lines.push(`Amount: ${escapeMrkdwn(e.amount)}`);
    if (e.customer) lines.push(`Customer: ${escapeMrkdwn(e.customer)}`);
    if (e.reason) lines.push(`Why: ${escapeMrkdwn(e.reason)}`);
    if (e.deadline) {
      const why = e.deadline_why === 'evidence_due_by' ? ' (before the evidence deadline)' : '';
      lines.push(`Expires: ${escapeMrkdwn(e.deadline)}${why}`);
    }
    for (const [key, value] of Object.entries(e.facts)) {
      lines.push(`${escapeMrkdwn(key)}: ${escapeMrkdwn(value)}`);
    }
    lines.push(`Event: ${escapeMrkdwn(e.id)}`);
    lines.push(`<${linkTarget(e.link)}|Open in the console>`);
  }
  if (notice.pause) {
    if (notice.pause.note) lines.push(`Why: ${escapeMrkdwn(notice.pause.note)}`);
    if (notice.pause.until) lines.push(`Until: ${escapeMrkdwn(notice.pause.until)}`);
    lines.push(`<${linkTarget(notice.pause.link)}|Open the console>`);
  }
  return { text: lines.join('\n') };
}
