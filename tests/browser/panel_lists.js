// The partner form in Lync's words with "Update allowed methods" and "Test
// these settings" (neither saves anything), the status page at 1280 px with
// streams and a failing partner, the filters of /status and /refused, and the
// audit log in pages of 50 with its filter. Run by test_browser.py.
'use strict';
const assert = require('assert/strict');
const dgram = require('dgram');
const fs = require('fs');
const net = require('net');
const path = require('path');
const tls = require('tls');
const { spawnSync } = require('child_process');
const { BASE, cli, knock, step, signIn, shot, run } = require('./lib');

// The netns's resolver (127.0.0.53, see tests/e2e/netns.sh) answering
// every question with NXDOMAIN, as a real DNS server does for a name that
// does not exist: what the probe meets for a domain that does not resolve.
function nxdomainServer() {
  const sock = dgram.createSocket('udp4');
  sock.on('message', (q, from) => {
    if (q.length < 12) return;
    // The question section runs from byte 12 to the end of its QTYPE and
    // QCLASS; anything after it (EDNS) is left out of the answer.
    let i = 12;
    while (i < q.length && q[i] !== 0) i += q[i] + 1;
    const question = q.subarray(12, i + 5);
    const head = Buffer.alloc(12);
    q.copy(head, 0, 0, 2); // the id
    head.writeUInt16BE(0x8000 | (q.readUInt16BE(2) & 0x0100) | 0x0080 | 3, 2); // QR RD RA NXDOMAIN
    head.writeUInt16BE(1, 4);
    sock.send(Buffer.concat([head, question]), from.port, from.address);
  });
  return new Promise((resolve) => sock.bind(53, '127.0.0.53', () => resolve(sock)));
}

// A server that says it is domain opens a stream, goes through STARTTLS
// with a self-signed certificate for domain, and then waits: the stream
// stays on the status page (TLS up, certificate refused as self-signed)
// until the establishment timeout.
function lingeringTlsStream(domain, dir) {
  const key = path.join(dir, `${domain}.key`), crt = path.join(dir, `${domain}.crt`);
  const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', `/CN=${domain}`,
    '-addext', `subjectAltName=DNS:${domain}`, '-keyout', key, '-out', crt], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:server' ` +
    `xmlns:stream='http://etherx.jabber.org/streams' to='contoso.test' from='${domain}' ` +
    `version='1.0'>`;
  return new Promise((resolve, reject) => {
    const sock = net.connect(5269, '127.0.0.1', () => sock.write(header));
    let said = '';
    const onData = (d) => {
      said += d;
      if (/<starttls/.test(said) && /<\/stream:features>/.test(said) && !/<proceed/.test(said)) {
        said = said.replace(/<starttls/, '<asked');
        sock.write("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
      } else if (/<proceed/.test(said)) {
        sock.removeListener('data', onData);
        const t = tls.connect({ socket: sock, servername: 'contoso.test', rejectUnauthorized: false,
          key: fs.readFileSync(key), cert: fs.readFileSync(crt) }, () => {
          t.write(header);
          t.once('data', () => resolve(t));
        });
        t.on('error', reject);
      }
    };
    sock.on('data', onData);
    sock.on('error', reject);
  });
}

function auditTotal() {
  const r = cli('audit', '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).length;
}

function notStored(domain) {
  const r = cli('partner', 'get', domain);
  assert.notEqual(r.status, 0, `${domain} must not be a partner: ${r.stdout}`);
}

async function optionTexts(page, sel) {
  return page.locator(`${sel} option`).allTextContents();
}

run(async (browser) => {
  const { context, page } = await signIn(browser, 'alice', process.env.FG_ADMIN_PW);
  await page.setViewportSize({ width: 1280, height: 900 });

  step("the New form speaks Lync's words and explains each partner type");
  await page.goto(`${BASE}/partners/new`);
  const labels = await page.locator('form.record label').allTextContents();
  for (const l of ['Primary domain (required)', 'Description', 'Additional domains',
    'Partner type', 'TLS negotiation', 'SASL negotiation', 'Dialback negotiation']) {
    assert.ok(labels.includes(l), `label ${l} in ${labels.join(' | ')}`);
  }
  assert.deepEqual(await optionTexts(page, '#partner_type'),
    ['Federated', 'Public verified', 'Public unverified']);
  assert.deepEqual(await optionTexts(page, '#tls'), ['Required', 'Optional', 'Not Supported']);
  assert.deepEqual(await optionTexts(page, '#sasl'), ['Required', 'Optional', 'Not Supported']);
  assert.deepEqual(await optionTexts(page, '#dialback'), ['True', 'False']);
  // The stored values stay fedgate's.
  assert.equal(await page.inputValue('#partner_type'), 'public-unverified');
  assert.equal(await page.getAttribute('#sasl option:text("Not Supported")', 'value'), 'not-supported');
  const help = await page.textContent('#type-help');
  for (const t of ['Federated', 'Public verified', 'Public unverified', 'status notes',
    'contact list']) {
    assert.ok(help.includes(t), `help mentions ${t}: ${help}`);
  }
  await shot(page, 'partner-form-lync.png');

  step('Update allowed methods recomputes the box for the values typed, saving nothing');
  const audits = auditTotal();
  await page.fill('#domain', 'nowhere.test');
  await page.fill('#description', 'typed, never saved');
  const before = await page.textContent('#methods');
  assert.match(before, /settings: SASL over TLS/);
  assert.doesNotMatch(before, /TCP Dialback/);
  await page.selectOption('#tls', 'optional');
  await page.selectOption('#sasl', 'not-supported');
  await Promise.all([page.waitForURL(`${BASE}/partners/recompute#methods`), page.click('#recompute')]);
  const after = await page.textContent('#methods');
  assert.match(after, /TLS Dialback, TCP Dialback/);
  assert.doesNotMatch(after, /SASL over TLS/);
  assert.equal(await page.inputValue('#domain'), 'nowhere.test');
  assert.equal(await page.inputValue('#description'), 'typed, never saved');
  assert.equal(await page.inputValue('#tls'), 'optional');
  assert.equal(await page.inputValue('#sasl'), 'not-supported');
  notStored('nowhere.test');
  assert.equal(auditTotal(), audits);

  step('Test these settings for a domain that does not resolve: the report, nothing saved');
  const dns = await nxdomainServer();
  try {
    await Promise.all([page.waitForURL(`${BASE}/partners/probe#probe-report`), page.click('#probe')]);
  } finally {
    dns.close();
  }
  const report = page.locator('#probe-report');
  assert.equal(await report.count(), 1, await page.content());
  assert.match(await page.textContent('#probe-verdict'), /probe of nowhere\.test: the settings probed would not work/);
  const steps = await page.locator('#probe-steps li').allTextContents();
  assert.ok(steps.some((s) => /_xmpp-server\._tcp\.nowhere\.test SRV: no such domain \(NXDOMAIN\)/.test(s)),
    steps.join('\n'));
  assert.match(await report.textContent(), /Settings tested.*TLS Optional, SASL Not Supported, dialback True/s);
  assert.match(await report.textContent(), /Settings that would work, most secure first/);
  assert.equal(await page.locator('#probe-no-rows').count(), 1);
  // The form as typed, still not committed.
  assert.equal(await page.inputValue('#domain'), 'nowhere.test');
  assert.equal(await page.inputValue('#description'), 'typed, never saved');
  assert.equal(await page.inputValue('#tls'), 'optional');
  notStored('nowhere.test');
  assert.equal(auditTotal(), audits);
  await shot(page, 'probe-report.png');
  // Committing from here is the ordinary Commit.
  await Promise.all([page.waitForURL(`${BASE}/partners`), page.click('#commit')]);
  assert.match(await page.textContent('#message'), /nowhere\.test/);
  assert.equal(auditTotal(), audits + 1);

  step('a viewer has no Test button and may not run the probe');
  const v = await signIn(browser, 'victor', process.env.FG_VIEWER_PW);
  await v.page.goto(`${BASE}/partners/edit?domain=nowhere.test`);
  assert.equal(await v.page.locator('#probe').count(), 0);
  assert.equal(await v.page.locator('#recompute').count(), 0);
  const csrf = await v.page.getAttribute('input[name="csrf"]', 'value');
  const forged = await v.context.request.post(`${BASE}/partners/probe`, {
    form: { csrf, mode: 'edit', domain: 'nowhere.test', tls: 'required', sasl: 'required', dialback: 'true' },
    maxRedirects: 0,
  });
  assert.equal(forged.status(), 403);
  await v.context.close();

  step('status at 1280 px: a live stream, a failing partner, human words, no horizontal scroll');
  for (const [d, ...args] of [
    ['fabrikam.test', '--tls', 'optional', '--sasl', 'optional'],
    ['a-partner-with-a-rather-long-domain-name.example.test', '--proxy-fqdn', '127.0.0.1:5999'],
  ]) {
    const r = cli('partner', 'new', '--domain', d, ...args);
    assert.equal(r.status, 0, r.stderr);
  }
  const sent = cli('test-im', '--to', 'nobody@a-partner-with-a-rather-long-domain-name.example.test', '--wait', '0');
  assert.equal(sent.status, 1, sent.stdout + sent.stderr);
  const stream = await lingeringTlsStream('fabrikam.test', process.env.HOME);
  try {
    await page.goto(`${BASE}/status`);
    const heads = await page.locator('#streams th').allTextContents();
    assert.deepEqual(heads, ['Direction', 'Local domain', 'Partner domain', 'State', 'Method',
      'TLS', 'Certificate', 'In / out', 'Age']);
    const row = page.locator('#streams tr.stream', { hasText: 'fabrikam.test' });
    assert.equal(await row.count(), 1, await page.content());
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[0], 'Inbound');
    assert.match(cells[5], /^TLS 1\.[23]$/);
    assert.equal(cells[6], 'self-signed');
    const details = await page.locator('#streams tr.details').first().textContent();
    assert.match(details, /Certificate.*chain is not trusted: self-signed certificate/s);
    assert.match(details, /Cipher.*TLSv1\.[23] /s);
    assert.match(cells[7], /^\d+(\.\d)? (B|KB) \/ \d+(\.\d)? (B|KB)\d+ \/ \d+ stanzas$/);
    assert.match(cells[8], /^\d+ s$/);
    const failing = page.locator('#failing tbody tr', { hasText: 'rather-long-domain' });
    assert.equal(await failing.count(), 1);
    assert.match(await failing.textContent(), /cannot connect to a-partner/);
    assert.match(await failing.textContent(), /retry-wait/);
    assert.match(await failing.textContent(), /in \d+ s|with the next stanza/);
    assert.doesNotMatch(await page.textContent('main'), /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/, 'no ISO noise');
    const widths = await page.evaluate(() => [document.documentElement.scrollWidth, document.body.scrollWidth]);
    assert.ok(widths[0] <= 1280 && widths[1] <= 1280, `scroll width ${widths}`);
    await shot(page, 'status-1280.png');

    step('the status filter narrows both lists');
    await page.fill('#q', 'FABRIKAM');
    await Promise.all([page.waitForURL(/\/status\?q=FABRIKAM/), page.click('#filter')]);
    assert.equal(await page.locator('#streams tr.stream', { hasText: 'fabrikam.test' }).count(), 1);
    assert.match(await page.textContent('#no-failures'), /No failing partner matches the filter/);
    await page.goto(`${BASE}/status?q=rather-long`);
    assert.equal(await page.locator('#failing tbody tr').count(), 1);
    assert.match(await page.textContent('#empty'), /No stream matches the filter/);
  } finally {
    stream.destroy();
  }

  step('the /refused filter');
  for (const d of ['knock-one.test', 'knock-two.test']) {
    assert.match(await knock(d), /not an allowed federation partner/);
  }
  await page.goto(`${BASE}/refused?q=ONE`);
  assert.deepEqual((await page.locator('#refused tbody tr td:first-child').allTextContents()), ['knock-one.test']);
  assert.equal(await page.locator('#clear-filter').count(), 1);
  await page.goto(`${BASE}/refused`);
  assert.equal(await page.locator('#refused tbody tr').count(), 2);
  await page.goto(`${BASE}/refused?q=nothing-like-it`);
  assert.match(await page.textContent('#empty'), /No refused domain matches the filter/);

  step('the audit log in pages of 50, newest first, the filter before the page');
  for (let i = 0; i < 60; i++) {
    const r = cli('partner', 'new', '--domain', `bulk${String(i).padStart(2, '0')}.test`);
    assert.equal(r.status, 0, r.stderr);
  }
  const total = auditTotal();
  const pages = Math.ceil(total / 50);
  await page.goto(`${BASE}/audit`);
  assert.equal(await page.textContent('#page'), `page 1 of ${pages}`);
  let rows = await page.locator('#audit tbody tr').allTextContents();
  assert.equal(rows.length, 50);
  assert.match(rows[0], /bulk59\.test/, 'the newest first');
  assert.match(rows[49], /bulk10\.test/);
  assert.equal(await page.locator('#newer').count(), 0);
  await Promise.all([page.waitForURL(`${BASE}/audit?page=2`), page.click('#older >> nth=0')]);
  assert.equal(await page.textContent('#page'), `page 2 of ${pages}`);
  rows = await page.locator('#audit tbody tr').allTextContents();
  assert.equal(rows.length, Math.min(50, total - 50));
  assert.match(rows[0], /bulk09\.test/);
  await Promise.all([page.waitForURL(`${BASE}/audit?page=1`), page.click('#newer >> nth=0')]);
  assert.match((await page.locator('#audit tbody tr').first().textContent()), /bulk59\.test/);

  await page.fill('#q', 'BULK');
  await Promise.all([page.waitForURL(/\/audit\?q=BULK/), page.click('#filter')]);
  assert.match(await page.textContent('#count'), /^60 changes match the filter/);
  assert.equal(await page.textContent('#page'), 'page 1 of 2');
  await Promise.all([page.waitForURL(`${BASE}/audit?page=2&q=BULK`), page.click('#older >> nth=0')]);
  assert.equal(await page.textContent('#page'), 'page 2 of 2');
  rows = await page.locator('#audit tbody tr').allTextContents();
  assert.equal(rows.length, 10);
  rows.forEach((r, i) => assert.match(r, new RegExp(`bulk0${9 - i}\\.test`)));
  assert.equal(await page.inputValue('#q'), 'BULK');
  assert.equal(await page.locator('#older').count(), 0);
  assert.doesNotMatch(await page.textContent('#audit'), /\d\d:\d\d:\d\d\.\d{3}Z/, 'no ISO noise');
  const w = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(w <= 1280, `audit scroll width ${w}`);
  await shot(page, 'audit-page2.png');
  await context.close();
}).catch((e) => {
  console.error(e);
  process.exit(1);
});
