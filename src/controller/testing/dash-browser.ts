/**
 * @module controller/testing/dash-browser
 * Helpers for the dashboard's browser tests: Debian's chromium (playwright-core, no browser
 * download), signing a user in through the page's own form, and a session cookie + CSRF token
 * obtained over HTTP for requests made outside the browser (cross-site cases).
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- playwright objects are used untyped here */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { need } from '../../testutil/require.js';
import type { TestController } from '../testutil.js';

export const CHROMIUM = '/usr/bin/chromium';
/** The `skip` option of a browser suite: under CI=true a missing chromium is a failure. */
export const needChromium = () => need(existsSync(CHROMIUM), 'needs Debian chromium (scripts/test-deps.txt)');

export async function launchChromium(): Promise<any> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}

/** A new page signed in as `user` through the sign-in form; `errors` collects uncaught page errors. */
export async function signIn(browser: any, t: TestController, user: string) {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e: Error) => errors.push(e.message));
  await page.goto(t.run.url + '/');
  await page.getByLabel('API token').fill(t.tokens[user]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText(`Signed in as ${user}`).waitFor();
  return { page, errors };
}

/** Sign in over HTTP: the `cp_session=…` cookie pair, the CSRF token, and the whole Set-Cookie. */
export async function cookieAndCsrf(
  t: TestController,
  user: string,
): Promise<{ cookie: string; csrf: string; setCookie: string }> {
  const r = await fetch(t.run.url + '/ui/session', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ token: t.tokens[user] }),
  });
  assert.equal(r.status, 200);
  const setCookie = r.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0], csrf: ((await r.json()) as any).csrf, setCookie };
}
