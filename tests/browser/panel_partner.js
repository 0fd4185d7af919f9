// The partner list's Health column and a partner's own page (issue 13):
// real traffic with a partner's server (a small XMPP peer here, speaking
// TCP Dialback over loopback) both ways, then the page with its SVG
// pictures; a partner whose server is down with the reason and the next
// retry; Retry now; Suspend and Resume (stored and audited); a viewer
// sees the page without buttons.
'use strict';
const assert = require('assert/strict');
const net = require('net');
const { spawn } = require('child_process');
const { BASE, cli, stored, step, signIn, shot, run } = require('./lib.js');

const PEER_PORT = 5990; // fabrikam.test's server
const DOWN_PORT = 5991; // nothing listens: down.test's server is down

const NS = "xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
  "xmlns:db='jabber:server:dialback'";

// fabrikam.test's server: answers fedgate's outbound stream with the
// dialback feature and says yes to its key and to every verification
// (it is the authoritative server for the keys of its own streams).
function fabrikamServer() {
  const got = { messages: 0, socks: [] };
  const server = net.createServer((sock) => {
    got.socks.push(sock);
    let buf = '';
    let opened = false;
    sock.on('data', (d) => {
      buf += d;
      if (!opened && buf.includes('<stream:stream')) {
        opened = true;
        sock.write(`<?xml version='1.0'?><stream:stream ${NS} from='fabrikam.test' ` +
          `to='contoso.test' id='fab-${Date.now()}' version='1.0'><stream:features>` +
          `<dialback xmlns='urn:xmpp:features:dialback'/></stream:features>`);
      }
      let m;
      while ((m = buf.match(/<db:result [^>]*>[^<]*<\/db:result>/))) {
        buf = buf.replace(m[0], '');
        sock.write("<db:result from='fabrikam.test' to='contoso.test' type='valid'/>");
      }
      while ((m = buf.match(/<db:verify [^>]*id='([^']*)'[^>]*>[^<]*<\/db:verify>/))) {
        buf = buf.replace(m[0], '');
        sock.write(`<db:verify from='fabrikam.test' to='contoso.test' id='${m[1]}' type='valid'/>`);
      }
      while ((m = buf.match(/<message[\s\S]*?<\/message>/))) {
        buf = buf.replace(m[0], '');
        got.messages++;
      }
    });
    sock.on('error', () => {});
  });
  return new Promise((resolve) => server.listen(PEER_PORT, '127.0.0.1', () => resolve({ server, got })));
}

// fabrikam.test's server connects to fedgate, authenticates with dialback
// (fedgate asks fabrikamServer to verify) and sends n messages.
function inboundStream(n) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(5269, '127.0.0.1', () => {
      sock.write(`<?xml version='1.0'?><stream:stream ${NS} from='fabrikam.test' ` +
        `to='contoso.test' version='1.0'>`);
    });
    let buf = '';
    let sent = false;
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('</stream:features>') && !buf.includes('db:result') && !sent) {
        sent = true;
        sock.write("<db:result from='fabrikam.test' to='contoso.test'>c2VjcmV0a2V5</db:result>");
      }
      if (/<db:result [^>]*type=['"]valid/.test(buf) && sent !== 'done') {
        sent = 'done';
        for (let i = 0; i < n; i++) {
          sock.write(`<message from='bob@fabrikam.test/desk' to='alice@contoso.test' ` +
            `type='chat' id='m${i}'><body>hello ${i}</body></message>`);
        }
        resolve(sock);
      }
      if (/type=['"]invalid|<stream:error/.test(buf)) reject(new Error(`refused: ${buf}`));
    });
    sock.on('error', reject);
    sock.setTimeout(15000, () => reject(new Error(`no dialback answer: ${buf}`)));
  });
}

async function waitFor(what, fn, ms = 10000) {
  const until = Date.now() + ms;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The CLI without blocking this process's loop: the peer above lives in
// it, and fedgate talks to that peer while the command runs.
function cliAsync(...args) {
  return new Promise((resolve) => {
    const p = spawn(process.env.FEDGATE, [...args, '-c', process.env.FG_CONF]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => { stdout += d; });
    p.stderr.on('data', (d) => { stderr += d; });
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function history(domain) {
  const r = cli('partner', 'history', domain, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}
const sum = (a) => a.reduce((x, y) => x + y, 0);

run(async (browser) => {
  step('partners: fabrikam.test (TCP Dialback to a peer here), down.test, idle.test');
  const { server, got } = await fabrikamServer();
  for (const args of [
    ['fabrikam.test', '--partner-type', 'federated', '--tls', 'not-supported', '--sasl', 'not-supported', '--dialback', 'true',
      '--proxy-fqdn', `127.0.0.1:${PEER_PORT}`, '--description', 'Fabrikam Inc., ops@fabrikam.test'],
    ['down.test', '--proxy-fqdn', `127.0.0.1:${DOWN_PORT}`],
    ['idle.test'],
  ]) {
    const r = cli('partner', 'new', '--domain', ...args);
    assert.equal(r.status, 0, r.stderr);
  }

  step('traffic both ways with fabrikam.test');
  let r = await cliAsync('test-im', '--to', 'bob@fabrikam.test', '--wait', '0', '--body', 'hello bob');
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const inbound = await inboundStream(12);
  // each message to alice (no such user) is answered with an error: out
  await waitFor('the answers to reach fabrikam.test', () => sum(history('fabrikam.test').stanzas_out) >= 13);
  const h = history('fabrikam.test');
  assert.equal(sum(h.stanzas_in), 12);
  assert.ok(got.messages >= 1, 'the test message reached the peer');
  assert.deepEqual(h.events.map((e) => `${e.event} ${e.direction} ${e.method}`).sort(),
    ['connected in TCP Dialback', 'connected out TCP Dialback']);

  step('down.test fails: its server refuses connections');
  r = cli('test-im', '--to', 'bob@down.test', '--wait', '0');
  assert.equal(r.status, 1, r.stdout + r.stderr);

  step('the list: a Health column and a filter');
  const { context, page } = await signIn(browser, 'alice', process.env.FG_ADMIN_PW);
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.goto(`${BASE}/partners`);
  const health = async (d) => (await page.textContent(`tr[data-domain="${d}"] .health`)).trim();
  assert.equal(await health('fabrikam.test'), 'Connected in/out (TCP Dialback)');
  assert.match(await health('down.test'), /^Failing since \d\d:\d\d UTC: .*Connection refused/);
  assert.equal(await health('idle.test'), 'Idle');
  assert.match(await page.getAttribute('tr[data-domain="down.test"] .health', 'title'),
    /Connection refused/);
  assert.equal(await page.textContent('tr[data-domain="fabrikam.test"] td:nth-child(4)'), 'Not Supported');
  await page.fill('#q', 'failing');
  await Promise.all([page.waitForURL(/q=failing/), page.click('#filter')]);
  assert.deepEqual(await page.locator('#partners tbody tr').evaluateAll(
    (rows) => rows.map((x) => x.dataset.domain)), ['down.test']);
  await page.goto(`${BASE}/partners`);
  await shot(page, 'partner-health.png');

  step('the partner page after traffic, through the domain link');
  await Promise.all([page.waitForURL(/\/partners\/view\?domain=fabrikam\.test$/),
    page.click('tr[data-domain="fabrikam.test"] td.domain a')]);
  assert.equal(await page.textContent('#health'), 'Connected in/out (TCP Dialback)');
  assert.match(await page.textContent('#settings'), /Partner typeFederated/);
  assert.match(await page.textContent('#settings'), /TLSNot Supported/);
  assert.match(await page.textContent('#allowed-methods'), /TCP Dialback/);
  const streams = await page.locator('#stream-list tbody tr').allTextContents();
  assert.equal(streams.length, 2, streams.join('\n'));
  assert.ok(streams.some((s) => s.startsWith('In') && s.includes('TCP Dialback')), streams.join('\n'));
  assert.ok(streams.some((s) => s.startsWith('Out') && s.includes('TCP Dialback')), streams.join('\n'));
  assert.equal(await page.textContent('#total-in'), '12');
  assert.ok(Number(await page.textContent('#total-out')) >= 13);
  // one bar per busy minute and series: here the last minute or two
  for (const series of ['in', 'out']) {
    const d = await page.getAttribute(`#traffic path.series-${series}`, 'd');
    assert.match(d, /^(M[\d.]+ [\d.]+V[\d.]+h[\d.]+V[\d.]+Z){1,2}$/, d);
  }
  assert.equal(await page.textContent('#traffic > title'), 'Stanzas per minute, last 24 hours');
  assert.ok(Number(await page.textContent('#ymax')) >= 12);
  assert.ok(await page.locator('#traffic text', { hasText: /^\d\d:00$/ }).count() >= 7, 'hour ticks');
  assert.equal(await page.locator('#events g.event-connected').count(), 2);
  assert.match(await page.textContent('#events g.event-connected title'), /connected (from|to) fabrikam\.test \(TCP Dialback\)/);
  assert.match(await page.textContent('#events-legend'), /stream up.*stream closed.*attempt failed/);
  assert.match(await page.textContent('#no-failure'), /No failure on record/);
  await shot(page, 'partner-page.png');
  await page.click('#span-1h');
  await page.waitForURL(/span=1h/);
  assert.equal(await page.textContent('#traffic > title'), 'Stanzas per minute, last 1 hour');
  await shot(page, 'partner-page-1h.png');

  step('fabrikam.test closes its stream: a closed event');
  inbound.end("</stream:stream>");
  await waitFor('the closed event', () => history('fabrikam.test').events.some((e) => e.event === 'closed'));
  await page.reload();
  assert.equal(await page.locator('#events g.event-closed').count(), 1);

  step('a partner whose server is down: the reason and the next retry');
  // a second attempt now, so that its retry delay (10 s) is still running
  assert.equal(cli('partner', 'retry', 'down.test').status, 0);
  r = cli('test-im', '--to', 'bob@down.test', '--wait', '0');
  assert.equal(r.status, 1, r.stdout + r.stderr);
  await page.goto(`${BASE}/partners/view?domain=down.test`);
  assert.match(await page.textContent('#health'), /^Failing since \d\d:\d\d UTC:/);
  const failure = await page.textContent('#failure');
  assert.match(failure, /Connection refused/);
  assert.match(failure, /Attempts2/);
  assert.match(failure, /Bounced2/);
  assert.match(await page.textContent('#next-retry'), /^in \d+ s, at \d\d:\d\d:\d\d UTC$/);
  assert.equal(await page.locator('#events g.event-failed').count(), 2);
  assert.match(await page.textContent('#event-list'), /Attempt failed.*Connection refused/);
  await shot(page, 'partner-down.png');

  step('Retry now: the flash says how many routes started an attempt');
  await Promise.all([page.waitForURL(/\/partners\/view\?domain=down\.test$/), page.click('#retry')]);
  assert.match(await page.textContent('#message'), /^Retry now: 0 route\(s\) started an attempt\. no stanza waits for down\.test/);
  assert.equal(await page.textContent('#next-retry'), 'with the next stanza');

  step('Suspend, then Resume: stored and audited');
  await Promise.all([page.waitForURL(/\/partners\/view\?domain=down\.test$/), page.click('#suspend')]);
  assert.match(await page.textContent('#message'), /^Suspended down\.test/);
  assert.equal(await page.textContent('#health'), 'Suspended');
  assert.equal(stored('down.test').enabled, false);
  assert.equal(await page.locator('#suspend').count(), 0);
  await Promise.all([page.waitForURL(/\/partners\/view\?domain=down\.test$/), page.click('#resume')]);
  assert.match(await page.textContent('#message'), /^Resumed down\.test/);
  assert.equal(stored('down.test').enabled, true);
  r = cli('audit', '--json');
  assert.equal(r.status, 0, r.stderr);
  const audit = JSON.parse(r.stdout).filter((a) => JSON.stringify(a).includes('down.test') &&
    JSON.stringify(a).includes('partner set'));
  assert.equal(audit.length, 2, r.stdout);
  for (const a of audit) assert.match(JSON.stringify(a), /alice/);
  await page.goto(`${BASE}/partners`);
  assert.notEqual(await health('down.test'), 'Suspended');

  step('many events: the newest 20 in the table, all on the timeline');
  for (let i = 0; i < 20; i++) {
    assert.equal(cli('partner', 'retry', 'down.test').status, 0);
    assert.equal(cli('test-im', '--to', 'bob@down.test', '--wait', '0').status, 1);
  }
  const nfailed = history('down.test').events.filter((e) => e.event === 'failed').length;
  assert.equal(nfailed, 22);
  await page.goto(`${BASE}/partners/view?domain=down.test`);
  assert.equal(await page.locator('#event-list tbody tr').count(), 20);
  assert.match(await page.textContent('#older-events'), /^2 older event\(s\) are on the timeline/);
  assert.equal(await page.locator('#events g.event-failed').count(), 22);

  step('an unknown partner: 404 with the reason');
  const resp = await page.goto(`${BASE}/partners/view?domain=nobody.test`);
  assert.equal(resp.status(), 404);
  assert.match(await page.textContent('#error'), /no partner has the domain 'nobody\.test'/);

  step('a viewer sees the page but no buttons, and cannot post');
  const v = await signIn(browser, 'victor', process.env.FG_VIEWER_PW);
  const vr = await v.page.goto(`${BASE}/partners/view?domain=fabrikam.test`);
  assert.equal(vr.status(), 200);
  assert.equal(await v.page.locator('#traffic').count(), 1);
  for (const id of ['#retry', '#suspend', '#resume', '#edit', '#delete']) {
    assert.equal(await v.page.locator(id).count(), 0, id);
  }
  const csrf = await v.page.getAttribute('input[name="csrf"]', 'value');
  const forged = await v.context.request.post(`${BASE}/partners/suspend`,
    { form: { domain: 'fabrikam.test', csrf }, maxRedirects: 0 });
  assert.equal(forged.status(), 403);
  assert.equal(stored('fabrikam.test').enabled, true);
  await v.context.close();
  await context.close();
  // fedgate's streams to the peer would keep this process alive
  for (const sock of got.socks) sock.destroy();
  inbound.destroy();
  server.close();
});
