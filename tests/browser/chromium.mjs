// Launches Debian's Chromium headless, as the machine allows (no network but loopback).
import { chromium } from 'playwright-core';

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
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
  const userAgent =
    `Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${version} Safari/537.36`;
  return browser.newContext({ userAgent, ...options });
}
