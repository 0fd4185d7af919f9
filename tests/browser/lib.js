// What every panel*.js script shares: where things are (from
// test_browser.py's environment), the CLI, a knock by a non-partner,
// signing in, Commit, screenshots and the browser itself.
//   FG_BASE          http://127.0.0.1:5280
//   FEDGATE, FG_CONF the CLI and its configuration (to check the store)
//   FG_ADMIN_PW, FG_VIEWER_PW   passwords of alice (administrator) and victor (viewer)
//   FG_SCREENSHOTS   folder for the screenshots
'use strict';
const { chromium } = require('playwright-core');
const { spawnSync } = require('child_process');
const assert = require('assert/strict');
const net = require('net');
const path = require('path');

const BASE = process.env.FG_BASE;
const SHOTS = process.env.FG_SCREENSHOTS;

function cli(...args) {
  return spawnSync(process.env.FEDGATE, [...args, '-c', process.env.FG_CONF], { encoding: 'utf8' });
}
function stored(domain) {
  const r = cli('partner', 'get', domain, '--json');
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}
// A server that says it is domain opens an s2s stream: refused (not a
// partner); resolves once fedgate has closed the connection.
function knock(domain) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(5269, '127.0.0.1', () => {
      sock.write(`<?xml version='1.0'?><stream:stream xmlns='jabber:server' ` +
        `xmlns:stream='http://etherx.jabber.org/streams' to='contoso.test' from='${domain}' ` +
        `version='1.0'>`);
    });
    let said = '';
    sock.on('data', (d) => { said += d; });
    sock.on('close', () => resolve(said));
    sock.on('error', reject);
    sock.setTimeout(10000, () => reject(new Error('fedgate never closed the stream')));
  });
}
function step(what) {
  console.log(`step: ${what}`);
}

async function signIn(browser, name, password) {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/partners`);
  assert.equal(new URL(page.url()).pathname, '/signin', 'unknown visitors go to the sign-in page');
  await page.fill('#name', name);
  await page.fill('#password', password);
  await Promise.all([page.waitForURL(`${BASE}/partners`), page.click('#signin')]);
  return { context, page };
}

async function commitAndWait(page) {
  await Promise.all([page.waitForLoadState('load'), page.click('#commit')]);
  await page.waitForLoadState('load');
}

// A full-page screenshot; test_browser.py checks each file it names.
async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, name), fullPage: true });
  console.log(`screenshot: ${name}`);
}

function launch() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  });
}

// Runs body(browser) and says so when every step passed.
async function run(body) {
  const browser = await launch();
  try {
    await body(browser);
  } finally {
    await browser.close();
  }
  console.log('browser: every step passed');
}

module.exports = { BASE, SHOTS, cli, stored, knock, step, signIn, commitAndWait, shot, run };
