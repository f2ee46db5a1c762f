/**
 * The console's script and stylesheet, as text modules so `tsc` puts them in dist/ with the rest
 * (no copy step, no bundler). Served from /console/assets/ on the same origin: the page loads
 * nothing from anywhere else, and the CSP allows nothing else. The script only adds behaviour —
 * live refresh and in-place actions; every piece of content is rendered (and escaped) by the
 * server, and the script never turns a string into markup.
 */
export const CONSOLE_SCRIPT = String.raw`'use strict';
(function () {
  var flash = document.getElementById('flash');
  var liveState = document.getElementById('live-state');
  var inFlight = false;
  var again = false;
  var timer = null;
  var settle = null;

  function say(text, ok) {
    if (!flash) return;
    flash.textContent = text;
    flash.className = ok ? 'ok' : 'error';
  }

  // A region is left alone while the person is typing in it (a Reason, a Note).
  function busy(el) {
    if (el.contains(document.activeElement) && document.activeElement !== document.body) {
      var tag = document.activeElement.tagName;
      if (tag === 'INPUT' || tag === 'TEXTAREA' || tag === 'SELECT') return true;
    }
    // A ticked confirmation, a chosen action or typed text: the person is at work here.
    var fields = el.querySelectorAll('input, textarea, select');
    for (var i = 0; i < fields.length; i++) {
      var f = fields[i];
      if (f.type === 'checkbox' ? f.checked : f.type !== 'hidden' && f.value) return true;
    }
    return false;
  }

  function refresh() {
    if (inFlight) {
      again = true;
      return;
    }
    inFlight = true;
    fetch(location.href, { credentials: 'same-origin', headers: { 'X-Console-Refresh': '1' } })
      .then(function (res) {
        if (res.status === 401) {
          location.reload();
          return null;
        }
        return res.ok ? res.text() : null;
      })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var fresh = doc.querySelectorAll('[data-live][id]');
        for (var i = 0; i < fresh.length; i++) {
          var old = document.getElementById(fresh[i].id);
          if (!old || busy(old)) continue;
          old.replaceWith(document.importNode(fresh[i], true));
        }
      })
      .catch(function () {})
      .then(function () {
        inFlight = false;
        if (again) {
          again = false;
          schedule();
        }
      });
  }

  function schedule() {
    if (timer) return;
    timer = setTimeout(function () {
      timer = null;
      refresh();
    }, 100);
  }

  function connect() {
    if (!window.EventSource) return;
    var source = new EventSource('/console/live');
    source.onopen = function () {
      if (liveState) {
        liveState.textContent = 'live';
        liveState.className = 'live-state on';
      }
    };
    source.onmessage = function () {
      schedule();
      // One more once things settle: the server recomputes the chart at most every 2 s, so the
      // refresh right after the last change of a burst may show it a change behind.
      clearTimeout(settle);
      settle = setTimeout(refresh, 2500);
    };
    source.onerror = function () {
      if (liveState) {
        liveState.textContent = 'reconnecting…';
        liveState.className = 'live-state off';
      }
      // The browser retries a dropped stream by itself, but not one the server refused (the
      // session expired: the refresh reloads to the sign-in page; too many consoles: try later).
      if (source.readyState === 2) {
        setTimeout(function () {
          refresh();
          connect();
        }, 5000);
      }
    };
  }

  document.addEventListener('submit', function (e) {
    var form = e.target;
    var action = form.getAttribute('action') || '';
    if (form.method !== 'post' || action.indexOf('/console/event/') !== 0) return;
    // A form that answers with a page (the ask-a-person decision: its errors beside its fields)
    // posts as the browser would.
    if (form.hasAttribute('data-native')) return;
    e.preventDefault();
    var buttons = form.querySelectorAll('button');
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = true;
    fetch(action, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { Accept: 'application/json' },
      body: new URLSearchParams(new FormData(form)),
    })
      .then(function (res) {
        return res.json().then(
          function (body) {
            return { ok: res.ok, body: body };
          },
          function () {
            return { ok: false, body: { message: 'The server answered ' + res.status + '.' } };
          }
        );
      })
      .then(function (r) {
        say(r.body.message || (r.ok ? 'Done.' : 'Refused.'), r.ok);
        if (r.ok) {
          var fields = form.querySelectorAll('input, textarea');
          for (var j = 0; j < fields.length; j++) {
            if (fields[j].type === 'checkbox') fields[j].checked = false;
            else fields[j].value = '';
          }
        }
      })
      .catch(function (err) {
        say('The request failed: ' + err.message, false);
      })
      .then(function () {
        for (var i = 0; i < buttons.length; i++) buttons[i].disabled = false;
        refresh();
      });
  });

  if (document.body.hasAttribute('data-live-feed')) connect();
})();
`;

export const CONSOLE_STYLES = `:root {
  --bg: #f6f7f9; --fg: #1b1f24; --muted: #5b6470; --card: #fff; --line: #dde1e6;
  --accent: #635bff; --ok: #137333; --warn: #b06000; --bad: #c5221f; --held: #8430ce;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; font-size: 15px;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); }
a { color: var(--accent); }
main { max-width: 1200px; margin: 0 auto; padding: 12px 20px 40px; }
.top { display: flex; align-items: center; flex-wrap: wrap; gap: 8px 16px; padding: 10px 20px; background: #0a2540; color: #fff; }
.brand { color: #fff; font-weight: 600; text-decoration: none; }
.brand span { font-weight: 400; opacity: .7; }
.live-state { font-size: 12px; padding: 2px 8px; border-radius: 10px; }
.live-state.on { background: #1e7e34; }
.live-state.off { background: #9a6700; }
.signout { margin-left: auto; }
.signout button { background: transparent; color: #fff; border-color: #ffffff66; }
#flash:empty { display: none; }
.banner { box-sizing: border-box; width: calc(100% - 40px); max-width: 1160px; margin: 12px auto 0; padding: 8px 14px; border-radius: 6px; background: #fff4e5; color: #7a4100; border: 1px solid #f5d3a3; }
#flash { max-width: 1200px; margin: 10px auto 0; padding: 10px 14px; border-radius: 6px; }
#flash.ok { background: #e6f4ea; color: var(--ok); }
#flash.error { background: #fce8e6; color: var(--bad); }
h1 { font-size: 20px; margin: 0 0 10px; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
/* Ids, errors and model text have no spaces to break at: they wrap anywhere, never widen a page. */
h1 .id { min-width: 0; overflow-wrap: anywhere; }
.mono, code { overflow-wrap: anywhere; }
.last-error { margin: 0 0 10px; padding: 8px 10px; border-left: 3px solid var(--bad); background: #fdf3f2; overflow-wrap: anywhere; }
.last-error .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; margin-right: 6px; }
h2 { font-size: 14px; margin: 14px 0 6px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); }
h2:first-child { margin-top: 0; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 12px 0; }
.muted { color: var(--muted); }
.small { font-size: 12px; }
.mono, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.counts { list-style: none; display: flex; gap: 10px; padding: 0; margin: 12px 0; flex-wrap: wrap; }
.count { display: block; min-width: 130px; padding: 10px 14px; background: var(--card); border: 1px solid var(--line); border-radius: 8px; text-decoration: none; color: var(--fg); border-left-width: 5px; }
.count.current { outline: 2px solid var(--accent); }
.count .n { font-size: 24px; font-weight: 600; display: block; }
.count .label { color: var(--muted); }
.s-pending { border-left-color: #1a73e8; }
.s-claimed { border-left-color: var(--warn); }
.s-awaiting_approval { border-left-color: var(--held); }
.s-dead { border-left-color: var(--bad); }
.s-acked { border-left-color: var(--ok); }
.chip { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; color: #fff; background: #1a73e8; }
.chip.s-claimed { background: var(--warn); }
.chip.s-awaiting_approval { background: var(--held); }
.chip.s-dead { background: var(--bad); }
.chip.s-acked { background: var(--ok); }
/* How a finished event ended: one colour each, so approved and rejected never look alike. */
.chip.o-dispatched { background: var(--ok); }
.chip.o-approved { background: #00695c; }
.chip.o-rejected { background: #ad1457; }
.chip.o-expired { background: #6d4c41; }
.chip.o-decided { background: #4527a0; }
.chip.o-handled { background: #455a64; }
.chip.o-superseded { background: #5f6368; }
.chip.o-no_action { background: #33691e; }
.chip.o-dry_run { background: #01579b; }
.overview { display: grid; grid-template-columns: minmax(0, 2fr) minmax(260px, 1fr); gap: 12px; }
.overview > *, .two > * { min-width: 0; }
.overview > * { margin: 0; }
.chart { width: 100%; height: auto; }
.chart .rec { fill: #1a73e8; }
.chart .dec { fill: var(--held); }
.chart .axis { stroke: var(--line); }
.chart .tick { font-size: 10px; fill: var(--muted); }
.legend { font-size: 12px; color: var(--muted); margin: 4px 0 0; }
.key { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-left: 8px; }
.key.rec { background: #1a73e8; }
.key.dec { background: var(--held); }
.insights p { margin: 4px 0; }
.mix { border-collapse: collapse; width: 100%; font-size: 13px; }
.mix th { text-align: left; font-weight: 600; padding: 3px 8px 3px 0; vertical-align: top; overflow-wrap: anywhere; }
.pill { display: inline-block; background: #eef0f3; border-radius: 10px; padding: 1px 7px; margin: 1px; }
.failures { padding-left: 18px; font-size: 13px; overflow-wrap: anywhere; }
.search { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; margin: 16px 0 0; }
.search label { font-weight: 600; }
.search input { flex: 1 1 220px; max-width: 36em; min-width: 0; }
.filter { display: flex; gap: 12px; align-items: end; margin: 16px 0 8px; flex-wrap: wrap; }
.filter label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); gap: 2px; }
select, input { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; background: #fff; color: var(--fg); max-width: 100%; }
button { font: inherit; padding: 6px 14px; border-radius: 6px; border: 1px solid var(--line); background: #fff; color: var(--fg); cursor: pointer; }
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.danger { background: var(--bad); border-color: var(--bad); color: #fff; }
button:disabled { opacity: .5; }
.queue { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
.queue caption { text-align: left; padding: 6px 0; color: var(--muted); }
.queue th, .queue td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
.queue th { font-size: 12px; color: var(--muted); font-weight: 600; }
.queue td.id { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 13px; white-space: nowrap; }
.queue td.id a { display: inline-block; max-width: 22em; overflow: hidden; text-overflow: ellipsis; vertical-align: bottom; }
.queue .err { max-width: 32em; overflow-wrap: anywhere; }
.queue .num { text-align: right; }
.queue .amount, .approval .amount { font-variant-numeric: tabular-nums; white-space: nowrap; }
.approval { flex-basis: 100%; }
.approval p { margin: 0 0 4px; }
.approval .amount { font-size: 18px; }
.approval h3, .decide h3 { font-size: 13px; margin: 12px 0 4px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
.held { overflow-wrap: anywhere; }
.card-facts { margin: 8px 0; }
.deadline strong { color: var(--warn); }
/* Model-written text: boxed and labelled as the model's, shown as text (pre-wrap), never markup. */
.sent { margin: 6px 0; }
.sent-label { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; }
.model-text { margin: 2px 0 0; padding: 8px 10px; border-left: 3px solid var(--held); background: #f7f2fc; white-space: pre-wrap; overflow-wrap: anywhere; }
.confirm { display: flex; gap: 6px; align-items: center; font-weight: 600; }
.act .confirm input { flex: none; min-width: auto; width: auto; margin: 0; }
.decide { flex-basis: 100%; display: flex; flex-direction: column; gap: 8px; border-top: 1px solid var(--line); padding-top: 8px; }
.decide .field { display: flex; flex-direction: column; gap: 2px; }
.decide label { font-family: ui-monospace, Menlo, Consolas, monospace; font-weight: 600; }
.decide textarea { font: inherit; padding: 5px 8px; border: 1px solid var(--line); border-radius: 6px; width: 100%; }
.decide .invalid select, .decide .invalid textarea { border-color: var(--bad); }
.field-error { color: var(--bad); font-size: 13px; margin: 0; }
.decide button { align-self: flex-start; }
.pager { margin: 10px 0; }
.facts { display: grid; grid-template-columns: minmax(0, max-content) minmax(0, 1fr); gap: 4px 14px; margin: 0; }
.facts dt { color: var(--muted); overflow-wrap: anywhere; }
.facts dd { margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.two { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 12px; }
.two > .card { margin: 0; }
.actions { display: flex; gap: 18px; flex-wrap: wrap; align-items: end; }
.act { display: flex; gap: 8px; align-items: center; flex-wrap: wrap; }
.act input { min-width: 0; flex: 1 1 240px; }
.timeline { list-style: none; padding: 0 0 0 14px; margin: 0; border-left: 2px solid var(--line); }
.timeline li { position: relative; padding: 4px 0 8px 10px; }
.timeline li::before { content: ""; position: absolute; left: -21px; top: 9px; width: 10px; height: 10px; border-radius: 50%; background: var(--accent); }
.timeline time { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 12px; color: var(--muted); }
.note { white-space: pre-wrap; overflow-wrap: anywhere; }
details summary { cursor: pointer; }
.detail summary { font-size: 13px; color: var(--muted); }
.detail pre { max-height: 240px; margin: 4px 0 0; }
pre { white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; max-width: 100%; font-size: 12px; max-height: 480px; overflow: auto; background: #f3f4f6; padding: 10px; border-radius: 6px; }
.signin { max-width: 420px; margin: 60px auto; }
.signin form { display: flex; flex-direction: column; gap: 8px; }
.error { color: var(--bad); }
/* Narrow: one column (after the rules it overrides, so that it wins). */
@media (max-width: 800px) { .overview, .two { grid-template-columns: minmax(0, 1fr); } }
/* A phone: one column, the queue's rows stacked as cards (each cell labelled), ids cut with an
   ellipsis (the whole id is the link's title and on the event's page). Nothing scrolls sideways. */
@media (max-width: 640px) {
  :root { font-size: 14px; }
  main { padding: 8px 10px 32px; }
  .top { padding: 8px 10px; }
  .card { padding: 12px; }
  .count { min-width: 0; flex: 1 1 calc(50% - 10px); padding: 8px 10px; }
  .count .n { font-size: 20px; }
  .overview { grid-template-columns: minmax(0, 1fr); }
  .queue, .queue tbody, .queue tr, .queue td, .queue caption { display: block; width: 100%; }
  .queue thead { display: none; }
  .queue tr { padding: 8px 10px; border-bottom: 1px solid var(--line); }
  .queue td { padding: 2px 0; border: 0; text-align: left; }
  .queue td[data-label]::before { content: attr(data-label); display: inline-block; width: 6.5em; color: var(--muted); font-size: 12px; }
  .queue td.id::before { display: none; }
  .queue td.id a { display: block; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-weight: 600; }
  .queue .num { text-align: left; }
  .queue .err { max-width: none; margin-left: 6.5em; }
  .facts { grid-template-columns: minmax(0, 1fr); gap: 0; }
  .facts dd { margin-bottom: 6px; }
  .actions { gap: 12px; }
  .act { width: 100%; }
  .signin { margin: 24px auto; }
}
`;
