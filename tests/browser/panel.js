// The control panel in real headless Chromium (Debian's, driven by
// playwright-core; no browser is downloaded): partners, status, who tried
// to federate. Run by test_browser.py (lib.js says what it passes).
'use strict';
const assert = require('assert/strict');
const { BASE, cli, stored, knock, step, signIn, commitAndWait, shot, run } = require('./lib');

run(async (browser) => {
  step('sign in as alice (administrator)');
  const { page } = await signIn(browser, 'alice', process.env.FG_ADMIN_PW);
  assert.match(await page.textContent('nav'), /Federation and External Access/);
  assert.match(await page.textContent('nav'), /XMPP Federated Partners/);

  step('create fabrikam.test with additional domains');
  await Promise.all([page.waitForURL(`${BASE}/partners/new`), page.click('#new')]);
  await page.fill('#domain', 'fabrikam.test');
  await page.fill('#description', 'Fabrikam Inc.');
  await page.fill('#additional_domains', 'corp.fabrikam.test, it.fabrikam.test');
  await page.selectOption('#partner_type', 'federated');
  await page.selectOption('#tls', 'required');
  await page.selectOption('#sasl', 'optional');
  await page.selectOption('#dialback', 'true');
  await Promise.all([page.waitForURL(`${BASE}/partners`), page.click('#commit')]);
  assert.match(await page.textContent('#message'), /partner created/);
  const row = page.locator('tr[data-domain="fabrikam.test"]');
  assert.match(await row.textContent(), /corp\.fabrikam\.test, it\.fabrikam\.test/);
  assert.match(await row.textContent(), /SASL over TLS, TLS Dialback/);
  let p = stored('fabrikam.test');
  assert.deepEqual(p.additional_domains, ['corp.fabrikam.test', 'it.fabrikam.test']);
  assert.equal(p.partner_type, 'federated');
  await shot(page, 'partner-list.png');

  step('edit to TLS not-supported + SASL required: refused, form kept, store unchanged');
  const before = stored('fabrikam.test');
  await Promise.all([page.waitForURL(/\/partners\/edit\?domain=fabrikam\.test$/),
    row.locator('text=Edit').click()]);
  assert.equal(await page.inputValue('#tls'), 'required');
  await page.selectOption('#tls', 'not-supported');
  await page.selectOption('#sasl', 'required');
  await page.fill('#description', 'Fabrikam, typed before the refusal');
  await commitAndWait(page);
  const errors = await page.textContent('#errors');
  assert.match(errors, /SASL must have TLS support/);
  assert.match(errors, /set tls to required or optional, or set sasl to not-supported/);
  assert.match(errors, /nothing was saved/);
  assert.equal(await page.inputValue('#tls'), 'not-supported');
  assert.equal(await page.inputValue('#sasl'), 'required');
  assert.equal(await page.inputValue('#description'), 'Fabrikam, typed before the refusal');
  assert.equal(await page.inputValue('#additional_domains'), 'corp.fabrikam.test, it.fabrikam.test');
  assert.match(await page.textContent('#methods'), /TCP Dialback/);
  await shot(page, 'refused-commit.png');
  assert.deepEqual(stored('fabrikam.test'), before, 'a refused commit saves nothing');

  step('fix (TLS optional) and Commit: saved, warning shown');
  await page.selectOption('#tls', 'optional');
  await Promise.all([page.waitForURL(`${BASE}/partners`), page.click('#commit')]);
  assert.match(await page.textContent('#message'), /partner changed/);
  assert.match(await page.textContent('#warnings'), /TLS optional may fail negotiation/);
  assert.match(await row.locator('.row-warning').textContent(), /TLS optional may fail negotiation/);
  p = stored('fabrikam.test');
  assert.equal(p.tls, 'optional');
  assert.equal(p.sasl, 'required');
  assert.equal(p.description, 'Fabrikam, typed before the refusal');

  step('delete, after a confirmation page');
  await Promise.all([page.waitForURL(/\/partners\/delete\?domain=fabrikam\.test$/),
    row.locator('text=Delete').click()]);
  assert.match(await page.textContent('#confirm'), /fabrikam\.test/);
  assert.equal(cli('partner', 'get', 'fabrikam.test').status, 0, 'nothing deleted before the confirmation');
  await Promise.all([page.waitForURL(`${BASE}/partners`), page.click('#delete')]);
  assert.match(await page.textContent('#message'), /Deleted: fabrikam\.test/);
  assert.equal(await page.locator('tr[data-domain="fabrikam.test"]').count(), 0);
  assert.equal(cli('partner', 'get', 'fabrikam.test').status, 3);

  step('a viewer sees everything and can change nothing');
  assert.equal(cli('partner', 'new', '--domain', 'litware.test', '--tls', 'optional').status, 0);
  const litware = stored('litware.test');
  const v = await signIn(browser, 'victor', process.env.FG_VIEWER_PW);
  assert.equal(await v.page.locator('#new').count(), 0);
  const vrow = v.page.locator('tr[data-domain="litware.test"]');
  assert.equal(await vrow.count(), 1);
  assert.equal(await vrow.locator('text=Delete').count(), 0);
  assert.equal(await vrow.locator('text=Edit').count(), 0);
  await Promise.all([v.page.waitForURL(/edit/), vrow.locator('text=View').click()]);
  assert.equal(await v.page.locator('#commit').count(), 0);
  assert.equal(await v.page.isDisabled('#tls'), true);
  for (const [target, form] of [
    ['/partners/commit', { mode: 'edit', domain: 'litware.test', tls: 'required', sasl: 'required', dialback: 'true' }],
    ['/partners/delete', { domain: 'litware.test' }],
    ['/gateway', { keepalive_interval: '30' }],
  ]) {
    const csrf = await v.page.getAttribute('input[name="csrf"]', 'value');
    const r = await v.context.request.post(`${BASE}${target}`, { form: { ...form, csrf }, maxRedirects: 0 });
    assert.equal(r.status(), 403, `forged POST ${target}`);
  }
  assert.deepEqual(stored('litware.test'), litware);
  for (const where of ['/gateway', '/audit', '/status', '/users']) {
    const r = await v.page.goto(`${BASE}${where}`);
    assert.equal(r.status(), 200, where);
    assert.equal(await v.page.locator('#commit').count(), 0, where);
  }

  step('the audit page shows each change, by alice via web');
  await page.goto(`${BASE}/audit`);
  const rows = await page.locator('#audit tbody tr').allTextContents();
  const web = rows.filter((r) => /alice/.test(r) && /web/.test(r) && /fabrikam\.test/.test(r));
  const actions = web.map((r) => (r.match(/partner (new|set|remove)/) || [''])[0]);
  assert.deepEqual(actions, ['partner remove', 'partner set', 'partner new'], rows.join('\n'));
  assert.ok(rows.some((r) => /litware\.test/.test(r) && /partner new/.test(r)));

  step('the other pages render');
  for (const where of ['/gateway', '/status', '/users', '/admins']) {
    const r = await page.goto(`${BASE}${where}`);
    assert.equal(r.status(), 200, where);
  }

  step('a partner whose server is down shows on the status page with its last failure');
  assert.equal(cli('partner', 'new', '--domain', 'down.test', '--proxy-fqdn', '127.0.0.1:5999').status, 0);
  const sent = cli('test-im', '--to', 'nobody@down.test', '--wait', '0');
  assert.equal(sent.status, 1, sent.stdout + sent.stderr);
  assert.match(sent.stderr, /cannot connect to down\.test/);
  await page.goto(`${BASE}/status`);
  const failing = page.locator('#failing tbody tr', { hasText: 'down.test' });
  assert.equal(await failing.count(), 1, await page.content());
  const text = await failing.textContent();
  assert.match(text, /cannot connect to down\.test/);
  assert.match(text, /retry-wait/);
  await shot(page, 'status-failing.png');

  step('a non-partner that knocked shows on "Who tried to federate"; Add as partner');
  const said = await knock('knocker.test');
  assert.match(said, /not an allowed federation partner/);
  await page.goto(`${BASE}/refused`);
  const knocked = page.locator('#refused tbody tr', { hasText: 'knocker.test' });
  assert.equal(await knocked.count(), 1, await page.content());
  assert.match(await knocked.textContent(), /127\.0\.0\.1/);
  await shot(page, 'refused-domains.png');
  await Promise.all([page.waitForURL(`${BASE}/partners/new?domain=knocker.test`),
                     knocked.locator('a.add').click()]);
  assert.equal(await page.inputValue('#domain'), 'knocker.test');
  await Promise.all([page.waitForURL(`${BASE}/partners`), page.click('#commit')]);
  assert.match(await page.textContent('#message'), /partner created/);
  assert.equal(stored('knocker.test').domain, 'knocker.test');
  await page.goto(`${BASE}/refused`);
  assert.equal(await page.locator('#refused tbody tr', { hasText: 'knocker.test' }).count(), 0);
}).catch((e) => {
  console.error(e);
  process.exit(1);
});
