// The Users and Admins pages in real headless Chromium: users add / set
// password / deny federation / remove, admins add / change role / set
// password / remove, the last administrator refused, named API tokens
// (shown once, then working against the API; revoking one leaves the
// other), and a viewer who sees no buttons. Run by test_browser.py.
'use strict';
const assert = require('assert/strict');
const fs = require('fs');
const path = require('path');
const { BASE, cli, step, signIn, shot, run } = require('./lib');

// The daemon's log, beside its configuration (tests/e2e/fgtest.py).
const LOG = path.join(path.dirname(process.env.FG_CONF), 'fedgate.log');

function cliJson(...args) {
  const r = cli(...args, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function submit(page, selector) {
  const [resp] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  return resp;
}

async function apiStatus(token) {
  const r = await fetch(`${BASE}/api/v1/partners`, { headers: { Authorization: `Bearer ${token}` } });
  return r.status;
}

run(async (browser) => {
  step('sign in as alice; Users and Admins are in the navigation');
  const { page } = await signIn(browser, 'alice', process.env.FG_ADMIN_PW);
  const nav = await page.locator('nav a').allTextContents();
  assert.deepEqual(nav.slice(2, 4), ['Users', 'Admins'], nav.join(', '));

  step('users: add refuses a short password and different confirmations; nothing saved');
  await page.goto(`${BASE}/users`);
  assert.match(await page.textContent('#empty'), /No local users/);
  await submit(page, '#add-user');
  assert.equal(new URL(page.url()).pathname, '/users/new');
  await page.fill('#jid', 'carol');
  await page.fill('#password', 'short');
  await page.fill('#confirm', 'short');
  let resp = await submit(page, '#save');
  assert.equal(resp.status(), 422);
  assert.match(await page.textContent('#errors'), /too short/);
  assert.equal(await page.inputValue('#jid'), 'carol', 'what was typed stays');
  assert.equal(await page.inputValue('#password'), '', 'a password is never sent back');
  await page.fill('#password', "carol's long password");
  await page.fill('#confirm', "carol's other password");
  resp = await submit(page, '#save');
  assert.equal(resp.status(), 422);
  assert.match(await page.textContent('#errors'), /two passwords differ/);
  await shot(page, 'user-add-refused.png');
  assert.equal((await page.content()).includes("carol's long password"), false);
  assert.deepEqual(cliJson('user', 'list'), []);

  step('users: add carol (a name is a user of the local domain) and dave');
  await page.fill('#password', "carol's long password");
  await page.fill('#confirm', "carol's long password");
  await submit(page, '#save');
  assert.equal(new URL(page.url()).pathname, '/users');
  assert.match(await page.textContent('#message'), /Added the user carol@contoso\.test/);
  await page.goto(`${BASE}/users/new`);
  await page.fill('#jid', 'dave@contoso.test');
  await page.fill('#password', "dave's long password");
  await page.fill('#confirm', "dave's long password");
  await submit(page, '#save');
  assert.deepEqual(cliJson('user', 'list').map((u) => u.jid), ['carol@contoso.test', 'dave@contoso.test']);

  step('users: set carol\'s password');
  const carol = page.locator('tr[data-jid="carol@contoso.test"]');
  await Promise.all([page.waitForURL(/\/users\/passwd\?jid=carol/), carol.locator('a.passwd').click()]);
  assert.equal(await page.inputValue('#jid'), 'carol@contoso.test');
  await page.fill('#password', "carol's new password");
  await page.fill('#confirm', "carol's new password");
  await submit(page, '#save');
  assert.match(await page.textContent('#message'), /Password of carol@contoso\.test changed/);

  step('users: deny carol federation');
  assert.match(await carol.locator('td.federation').textContent(), /Allowed/);
  await submit(page, 'tr[data-jid="carol@contoso.test"] button[name="toggle"]');
  assert.match(await page.textContent('#message'), /Federation with partners denied for carol/);
  assert.match(await carol.locator('td.federation').textContent(), /Denied/);
  assert.equal(cliJson('user', 'get', 'carol@contoso.test').xmpp_access, false);
  await shot(page, 'users.png');

  step('users: the filter box finds by JID and by the words shown');
  await page.fill('#q', 'denied');
  await submit(page, '#filter');
  assert.equal(await page.locator('#users tbody tr').count(), 1);
  assert.match(await page.textContent('#count'), /1 of 2 users/);
  await page.goto(`${BASE}/users?q=nobody`);
  assert.match(await page.textContent('#empty'), /No user matches/);

  step('users: remove dave after a confirmation');
  await page.goto(`${BASE}/users`);
  await Promise.all([page.waitForURL(/\/users\/remove\?jid=dave/),
    page.locator('tr[data-jid="dave@contoso.test"] a.remove').click()]);
  assert.match(await page.textContent('#confirm-text'), /Remove the user dave@contoso\.test/);
  assert.equal(cliJson('user', 'list').length, 2, 'nothing removed before the confirmation');
  await submit(page, '#remove');
  assert.match(await page.textContent('#message'), /Removed the user dave@contoso\.test/);
  assert.deepEqual(cliJson('user', 'list').map((u) => u.jid), ['carol@contoso.test']);

  step('admins: the list; add bob (viewer), refused first for a short password');
  await page.goto(`${BASE}/admins`);
  assert.match(await page.textContent('tr[data-name="alice"]'), /\(you\)/);
  await submit(page, '#add-admin');
  await page.fill('#name', 'bob');
  await page.selectOption('#role', 'viewer');
  await page.fill('#password', 'short');
  await page.fill('#confirm', 'short');
  resp = await submit(page, '#save');
  assert.equal(resp.status(), 422);
  assert.match(await page.textContent('#errors'), /too short/);
  assert.equal(await page.inputValue('#name'), 'bob');
  assert.equal(cliJson('admin', 'list').length, 2);
  await page.fill('#password', "bob's long password");
  await page.fill('#confirm', "bob's long password");
  await submit(page, '#save');
  assert.match(await page.textContent('#message'), /Added the admin account bob \(viewer\)/);

  step('admins: the last administrator cannot step down or be removed');
  await page.selectOption('tr[data-name="alice"] select[name="role"]', 'viewer');
  resp = await submit(page, 'tr[data-name="alice"] button[name="change-role"]');
  assert.equal(resp.status(), 422);
  assert.match(await page.textContent('#errors'), /alice is the last administrator.*admin set NAME --role administrator/);
  await shot(page, 'admins-refused.png');
  resp = await page.goto(`${BASE}/admins/remove?name=alice`);
  assert.equal(resp.status(), 422);
  assert.match(await page.textContent('#errors'), /last administrator/);
  assert.equal(cliJson('admin', 'list').find((a) => a.name === 'alice').role, 'administrator');

  step('admins: make bob an administrator, set his password; he signs in with it');
  await page.goto(`${BASE}/admins`);
  await page.selectOption('tr[data-name="bob"] select[name="role"]', 'administrator');
  await submit(page, 'tr[data-name="bob"] button[name="change-role"]');
  assert.match(await page.textContent('#message'), /Bob is now an administrator \(was viewer\)/);
  assert.equal(cliJson('admin', 'list').find((a) => a.name === 'bob').role, 'administrator');
  await Promise.all([page.waitForURL(/\/admins\/passwd\?name=bob/),
    page.locator('tr[data-name="bob"] a.passwd').click()]);
  await page.fill('#password', "bob's new password");
  await page.fill('#confirm', "bob's new password");
  await submit(page, '#save');
  assert.match(await page.textContent('#message'), /Password of bob changed/);
  const bob = await signIn(browser, 'bob', "bob's new password");
  await bob.context.close();

  step('tokens: a new token is shown once and works against the API');
  await page.goto(`${BASE}/admins`);
  await Promise.all([page.waitForURL(/\/admins\/tokens\?name=alice/),
    page.locator('tr[data-name="alice"] a.show-tokens').click()]);
  assert.match(await page.textContent('#empty'), /No API tokens/);
  await page.fill('#label', 'prometheus');
  await submit(page, '#new-token');
  const prometheus = (await page.textContent('#token')).trim();
  assert.match(prometheus, /^fgt_[0-9a-f]{64}$/);
  assert.match(await page.textContent('#once'), /will not be shown again/);
  await shot(page, 'admin-new-token.png');
  assert.equal(await apiStatus(prometheus), 200);

  step('tokens: a second one; both work; the list shows labels, never a token');
  await submit(page, '#back');
  await page.fill('#label', 'script');
  await submit(page, '#new-token');
  const script = (await page.textContent('#token')).trim();
  assert.equal(await apiStatus(script), 200);
  assert.equal(await apiStatus(prometheus), 200);
  await submit(page, '#back');
  assert.deepEqual(await page.locator('#tokens tbody tr td:first-child').allTextContents(), ['prometheus', 'script']);
  assert.doesNotMatch(await page.locator('tr[data-label="prometheus"]').textContent(), /never/, 'its use was noted');
  const html = await page.content();
  assert.equal(html.includes(prometheus) || html.includes(script), false);

  step('tokens: revoke one; the other still works');
  await submit(page, 'tr[data-label="script"] button[name="revoke"]');
  assert.match(await page.textContent('#message'), /Revoked the API token 'script' of alice/);
  assert.equal(await apiStatus(script), 401);
  assert.equal(await apiStatus(prometheus), 200);
  assert.deepEqual(cliJson('admin', 'tokens', 'alice').map((t) => t.label), ['prometheus']);
  await shot(page, 'admin-tokens.png');
  await page.goto(`${BASE}/admins`);
  assert.equal((await page.textContent('tr[data-name="alice"] td.tokens')).trim(), '1');
  await shot(page, 'admins.png');

  step('admins: remove bob after a confirmation');
  await Promise.all([page.waitForURL(/\/admins\/remove\?name=bob/),
    page.locator('tr[data-name="bob"] a.remove').click()]);
  assert.match(await page.textContent('#confirm-text'), /Remove the admin account bob/);
  await submit(page, '#remove');
  assert.match(await page.textContent('#message'), /Admin account bob removed/);
  assert.deepEqual(cliJson('admin', 'list').map((a) => a.name), ['alice', 'victor']);

  step('the audit names the labels; neither it nor the log has a token or a password');
  const audit = cli('audit').stdout;
  const log = fs.readFileSync(LOG, 'utf8');
  assert.match(log, /alice/, 'the log is the daemon\'s');
  for (const what of ['user add', 'user passwd', 'user set', 'user remove', 'admin add',
    'admin set', 'admin passwd', 'admin remove', 'admin token', 'admin token revoke', 'prometheus']) {
    assert.ok(audit.includes(what), what);
  }
  for (const secret of [prometheus, script, "carol's long password", "carol's new password",
    "bob's long password", "bob's new password"]) {
    assert.equal(audit.includes(secret), false, 'audit');
    assert.equal(log.includes(secret), false, 'log');
  }

  step('a viewer sees the pages without a button');
  const v = await signIn(browser, 'victor', process.env.FG_VIEWER_PW);
  for (const where of ['/users', '/admins', '/admins/tokens?name=alice']) {
    const r = await v.page.goto(`${BASE}${where}`);
    assert.equal(r.status(), 200, where);
    assert.equal(await v.page.locator('main button:not(#filter)').count(), 0, where);
    assert.equal(await v.page.locator('main select, #add-user, #add-admin, a.remove, a.passwd').count(), 0, where);
  }
  assert.match(await v.page.content(), /prometheus/);
  const csrf = await v.page.getAttribute('input[name="csrf"]', 'value');
  for (const where of ['/users/new', '/admins/new', '/admins/remove?name=alice']) {
    const r = await v.page.goto(`${BASE}${where}`);
    assert.equal(r.status(), 403, where);
  }
  for (const [target, form] of [
    ['/admins/role', { name: 'victor', role: 'administrator' }],
    ['/admins/tokens/new', { name: 'victor', label: 'mine' }],
    ['/users/federation', { jid: 'carol@contoso.test', xmpp_access: 'true' }],
  ]) {
    const r = await v.context.request.post(`${BASE}${target}`, { form: { ...form, csrf }, maxRedirects: 0 });
    assert.equal(r.status(), 403, `forged POST ${target}`);
  }
  assert.equal(cliJson('admin', 'list').find((a) => a.name === 'victor').role, 'viewer');
  assert.equal(cliJson('admin', 'tokens', 'victor').length, 0);
});
