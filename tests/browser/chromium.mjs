// Launches Debian's Chromium headless, as the machine allows (no network but loopback).
import { execFileSync } from 'node:child_process';
import { chromium } from 'playwright-core';

const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';

function humanUserAgent(version) {
  return `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${version} Safari/537.36`;
}

// Like `launch`, with the human User-Agent set for the whole browser
// (`--user-agent`), not only per page: requests the browser finishes after a
// page is gone (a sendBeacon or keepalive fetch sent in pagehide) carry the
// browser's own User-Agent, which `humanContext` cannot reach.
// `bfcache`: keep the back/forward cache on (Playwright turns it off).
export function launchHuman({ bfcache = false } = {}) {
  const out = execFileSync(executablePath, ['--version'], { encoding: 'utf8' });
  const version = (out.match(/\d+\.\d+\.\d+\.\d+/) || ['130.0.0.0'])[0];
  return launch([`--user-agent=${humanUserAgent(version)}`], bfcache);
}

export function launch(extra = [], bfcache = false) {
  return chromium.launch({
    executablePath,
    headless: true,
    ignoreDefaultArgs: bfcache ? ['--disable-back-forward-cache'] : [],
    args: [
      ...extra,
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

// Headless Chromium says "HeadlessChrome" in its User-Agent, which the
// collector rightly drops as automation. Tests stand in for people, so their
// pages get the User-Agent the same Chromium sends with a window.
export async function humanContext(browser, options = {}) {
  const version = browser.version();
  const userAgent = humanUserAgent(version);
  return browser.newContext({ userAgent, ...options });
}

// Collects what a page reports going wrong: console errors and warnings into
// `report.errors` (Chromium's own network lines, "Failed to load resource:
// …", left out) and uncaught exceptions into `report.pageErrors`.
export function watchErrors(page, report) {
  page.on('console', (m) => {
    if ((m.type() === 'error' || m.type() === 'warning') && !m.text().startsWith('Failed to load resource:')) {
      report.errors.push(m.text());
    }
  });
  page.on('pageerror', (e) => report.pageErrors.push(String(e)));
}
