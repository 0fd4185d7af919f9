// Issue 15's partner fields in the panel: bidirectional streams, DANE and
// public-key pins on the form, refused with the message beside the field
// and nothing saved when wrong, normalized when saved, and shown on the
// partner's page.
'use strict';
const assert = require('assert/strict');
const { BASE, stored, step, signIn, commitAndWait, shot, run } = require('./lib.js');

// SHA-256 of "abc", in hex as openssl prints a digest, and as stored.
const HEX = 'ba:78:16:bf:8f:01:cf:ea:41:41:40:de:5d:ae:22:23:b0:03:61:a3:96:17:7a:9c:b4:10:ff:61:f2:00:15:ad';
const B64 = 'ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=';

run(async (browser) => {
  const { page } = await signIn(browser, 'alice', process.env.FG_ADMIN_PW);

  step('a new partner: bidi on, DANE off and no pins by default');
  await Promise.all([page.waitForURL(`${BASE}/partners/new`), page.click('#new')]);
  assert.equal(await page.inputValue('#bidi'), 'true');
  assert.equal(await page.inputValue('#dane'), 'off');
  assert.equal(await page.inputValue('#pins'), '');
  await page.fill('#domain', 'northwind.test');
  await page.selectOption('#bidi', 'false');
  await page.selectOption('#dane', 'required');
  await page.fill('#pins', 'not-a-key');
  await commitAndWait(page);

  step('a pin that is no key: refused beside the field, nothing saved');
  const errors = await page.textContent('#errors');
  assert.match(errors, /pins: 'not-a-key' is not a SHA-256 public-key pin/);
  assert.match(errors, /nothing was saved/);
  assert.match(await page.textContent('#pins ~ .field-error'), /not a SHA-256 public-key pin/);
  assert.equal(await page.inputValue('#pins'), 'not-a-key');
  assert.equal(await page.inputValue('#dane'), 'required');
  await shot(page, 'partner-keys-refused.png');

  step('the key in hex with colons: saved, stored in base64');
  await page.fill('#pins', HEX);
  await Promise.all([page.waitForURL(`${BASE}/partners`), page.click('#commit')]);
  assert.match(await page.textContent('#message'), /partner created/);
  const p = stored('northwind.test');
  assert.equal(p.bidi, false);
  assert.equal(p.dane, 'required');
  assert.deepEqual(p.pins, [B64]);

  step('the partner page shows them');
  await page.goto(`${BASE}/partners/view?domain=northwind.test`);
  const settings = await page.textContent('#settings');
  assert.match(settings, /Bidirectional streamsDisabled/);
  assert.match(settings, /DANERequired/);
  assert.equal((await page.textContent('#pins')).trim(), B64);
  await shot(page, 'partner-keys-page.png');

  step('the edit form holds them, and DANE on a row without TLS is refused');
  await page.goto(`${BASE}/partners/edit?domain=northwind.test`);
  assert.equal(await page.inputValue('#pins'), B64);
  await page.selectOption('#tls', 'not-supported');
  await page.selectOption('#sasl', 'not-supported');
  await commitAndWait(page);
  const e2 = await page.textContent('#errors');
  assert.match(e2, /dane: required needs TLS/);
  assert.match(e2, /pins: keys are pinned, but tls is not-supported/);
  assert.deepEqual(stored('northwind.test'), p, 'a refused commit saves nothing');
});
