#!/usr/bin/env node
// A person at a browser, for the WebSSO tests: the plugin runs this as its browser opener
// (CLIENT_KEYSTONE_AUTH_BROWSER) with the login URL as the last argument. It drives Debian's
// headless Chromium with playwright-core to that URL, fills the test IdP's login form and lets
// Keystone's auto-submitting page POST the token to the plugin's callback, as a real browser would.
//
// Environment: KSA_TEST_BROWSER_LOG (a file; one line per launch, then "done <callback url>" or
// "error <message>"), KSA_TEST_IDP_USER (fed-user), KSA_TEST_IDP_GROUPS (federated-users),
// KSA_TEST_IDP_EMAIL (optional), KSA_TEST_BROWSER_STOP_AT_LOGIN=1 (open the form, never submit).
// Plain JavaScript, so that it runs under `node` without a TypeScript loader.
import { appendFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'

const url = process.argv[process.argv.length - 1] ?? ''
const logFile = process.env.KSA_TEST_BROWSER_LOG
const log = (line) => { if (logFile) appendFileSync(logFile, `${line}\n`) }
log(`launch ${process.pid}`)

const dir = mkdtempSync(join(tmpdir(), 'ksa-chromium-'))
let ctx
try {
  ctx = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.KSA_TEST_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60_000
  })
  const page = ctx.pages()[0] ?? await ctx.newPage()
  page.setDefaultTimeout(60_000)
  await page.goto(url)
  await page.waitForSelector('#username')
  if (process.env.KSA_TEST_BROWSER_STOP_AT_LOGIN === '1') {
    log('at-login')
  } else {
    await page.fill('#username', process.env.KSA_TEST_IDP_USER ?? 'fed-user')
    if (process.env.KSA_TEST_IDP_EMAIL) await page.fill('#email', process.env.KSA_TEST_IDP_EMAIL)
    await page.fill('#groups', process.env.KSA_TEST_IDP_GROUPS ?? 'federated-users')
    await page.click('#submit')
    // Keystone's page submits the token form on load; the plugin answers the callback with a
    // "you can close this tab" page.
    await page.waitForURL(u => new URL(u).pathname === '/callback')
    await page.waitForSelector('#ksa-done')
    log(`done ${page.url()}`)
  }
} catch (err) {
  log(`error ${String(err?.message ?? err).split('\n')[0]}`)
  process.exitCode = 1
} finally {
  await ctx?.close().catch(() => {})
  rmSync(dir, { recursive: true, force: true })
}
