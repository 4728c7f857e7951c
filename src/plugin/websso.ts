import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { spawn } from 'node:child_process'
import { ERR, type ErrorCode, KsaError, UsageError, errorMessage } from '../errors.js'

// Keystone WebSSO, the browser login Horizon uses, for a command-line client: listen on a loopback
// port that Keystone lists in [federation] trusted_dashboard, send the browser to Keystone's websso
// URL with that callback as `origin`, and take the unscoped token Keystone's page POSTs back.
// WebSSO has no state or nonce: the Origin header of that POST (the browser sets it; a page cannot
// forge it) is the guard, so only a POST whose Origin is Keystone's own origin is accepted.
// That stops web pages, not another local process (another user on the machine can post to a
// loopback port with any Origin): so the caller also checks each posted token with Keystone
// (`accept`) and refuses one of another user than the login's last one.

export const CALLBACK_PATH = '/callback'
const MAX_FORM = 64 * 1024

export class WebssoError extends KsaError {
  constructor (code: ErrorCode, message: string) {
    super(code, message)
    this.name = 'WebssoError'
  }
}

/** "8250-8259", "8250,8251 8260": the callback ports, in order, without duplicates. */
export function parsePorts (text: string): number[] {
  const out: number[] = []
  const bad = (why: string): never => { throw new UsageError(`invalid value ${JSON.stringify(text)} for --websso-ports: ${why} (e.g. 8250-8259)`) }
  const port = (x: string): number => {
    if (!/^\d+$/.test(x)) bad(`${JSON.stringify(x)} is not a port`)
    const n = Number(x)
    if (n < 1 || n > 65535) bad(`${n} is not a port`)
    return n
  }
  for (const part of text.split(/[\s,]+/).filter(Boolean)) {
    const m = /^(\d+)-(\d+)$/.exec(part)
    if (m !== null) {
      const a = port(m[1] as string)
      const b = port(m[2] as string)
      if (b < a || b - a > 1000) bad(`range ${part}`)
      for (let p = a; p <= b; p++) out.push(p)
    } else {
      out.push(port(part))
    }
  }
  if (out.length === 0) bad('no port')
  return [...new Set(out)]
}

export function callbackUrl (port: number): string {
  return `http://127.0.0.1:${port}${CALLBACK_PATH}`
}

/** Keystone's websso URL for this callback; without an identity provider Keystone finds it from the IdP's attributes. */
export function webssoUrl (authUrl: string, protocol: string, identityProvider: string | undefined, callback: string): string {
  const e = encodeURIComponent
  const path = identityProvider !== undefined && identityProvider !== ''
    ? `/auth/OS-FEDERATION/identity_providers/${e(identityProvider)}/protocols/${e(protocol)}/websso`
    : `/auth/OS-FEDERATION/websso/${e(protocol)}`
  return `${authUrl}${path}?origin=${e(callback)}`
}

/** The command that opens a URL: CLIENT_KEYSTONE_AUTH_BROWSER (split at spaces, the URL appended), or the platform's opener. */
export function browserCommand (configured: string | undefined, platform: NodeJS.Platform = process.platform): string[] | undefined {
  if (configured !== undefined && configured.trim() !== '') {
    if (configured.trim() === 'none') return undefined
    return configured.trim().split(/\s+/)
  }
  if (platform === 'darwin') return ['open']
  if (platform === 'win32') return ['cmd', '/c', 'start', '""']
  return ['xdg-open']
}

function openBrowser (cmd: string[], url: string, log: (line: string) => void): void {
  try {
    const child = spawn(cmd[0] as string, [...cmd.slice(1), url], { detached: true, stdio: 'ignore' })
    child.on('error', err => log(`could not start the browser (${cmd[0] ?? ''}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}); open the URL above yourself`))
    child.unref()
  } catch (err) {
    log(`could not start the browser (${errorMessage(err)}); open the URL above yourself`)
  }
}

export interface WebssoLoginOptions {
  /** Normalized, ending in /v3. */
  authUrl: string
  protocol: string
  identityProvider?: string
  ports: number[]
  timeoutMs: number
  /** Opener command; undefined: do not start a browser (the URL is printed anyway). */
  browser?: string[]
  /** One line to the user (stderr). */
  log: (line: string) => void
  /** Called once listening, with the callback URL (tests). */
  onListening?: (callback: string, url: string) => void
  /**
   * Checks a posted token before it is taken (with Keystone: whose it is). Resolves undefined to
   * take it, or the reason to refuse it (the wait goes on); a rejection ends the login with it.
   */
  accept?: (token: string) => Promise<string | undefined>
}

async function listenOnFirstFree (server: Server, ports: number[]): Promise<number> {
  const tried: string[] = []
  for (const port of ports) {
    const err = await new Promise<NodeJS.ErrnoException | undefined>(resolve => {
      const onError = (e: NodeJS.ErrnoException): void => { server.off('listening', onListening); resolve(e) }
      const onListening = (): void => { server.off('error', onError); resolve(undefined) }
      server.once('error', onError)
      server.once('listening', onListening)
      server.listen(port, '127.0.0.1')
    })
    if (err === undefined) return port
    if (err.code !== 'EADDRINUSE' && err.code !== 'EACCES') throw err
    tried.push(`${port} (${err.code})`)
  }
  throw new WebssoError(ERR.WEBSSO_PORTS, `no free callback port for the WebSSO login: tried ${tried.join(', ')}; another login may be running, or set --websso-ports/CLIENT_KEYSTONE_AUTH_WEBSSO_PORTS to ports your Keystone trusts`)
}

const DONE_PAGE = '<!doctype html><html><head><meta charset="utf-8"><title>Logged in</title></head>' +
  '<body style="font-family:sans-serif"><h1>Logged in</h1><p id="ksa-done">client-keystone-auth has your Keystone token. You can close this tab.</p></body></html>\n'

function answer (res: ServerResponse, status: number, text: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', connection: 'close' })
  res.end(text)
}

/**
 * Runs one WebSSO login and resolves with the unscoped federated token. Accepts exactly one
 * `POST /callback` (form field `token`) whose Origin is Keystone's origin; anything else is refused
 * and the wait goes on, so that another page cannot end the login. Rejects after timeoutMs.
 */
export async function webssoLogin (o: WebssoLoginOptions): Promise<string> {
  const keystoneOrigin = new URL(o.authUrl).origin
  let done = false
  let settle: { resolve: (token: string) => void, reject: (err: Error) => void } | undefined
  const result = new Promise<string>((resolve, reject) => { settle = { resolve, reject } })
  let port = 0

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== CALLBACK_PATH) { answer(res, 404, 'not found\n'); return }
    if (req.method !== 'POST') { answer(res, 405, 'the WebSSO callback takes a POST from Keystone\'s login page\n'); return }
    if (req.headers.host !== `127.0.0.1:${port}`) { answer(res, 403, 'refused: wrong Host\n'); return }
    const origin = req.headers.origin
    if (origin !== keystoneOrigin) {
      o.log(`refused a WebSSO callback from origin ${JSON.stringify(origin ?? '(none)').slice(0, 100)}: only ${keystoneOrigin} may send the token; still waiting`)
      answer(res, 403, `refused: the token must come from Keystone's login page (${keystoneOrigin})\n`)
      return
    }
    if (done) { answer(res, 409, 'this login is already complete\n'); return }
    const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/x-www-form-urlencoded') { answer(res, 415, 'expected a form (application/x-www-form-urlencoded)\n'); return }
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (c: Buffer) => {
      size += c.length
      if (size > MAX_FORM) { answer(res, 413, 'form too large\n'); req.destroy(); return }
      chunks.push(c)
    })
    req.on('end', () => {
      if (size > MAX_FORM || res.writableEnded) return
      const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('token') ?? ''
      if (token === '' || !/^[\x21-\x7e]+$/.test(token)) { answer(res, 400, 'the form has no token\n'); return }
      if (done) { answer(res, 409, 'this login is already complete\n'); return }
      const take = (): void => {
        if (done) { answer(res, 409, 'this login is already complete\n'); return }
        done = true
        answer(res, 200, DONE_PAGE, 'text/html; charset=utf-8')
        settle?.resolve(token)
      }
      if (o.accept === undefined) { take(); return }
      o.accept(token).then(reason => {
        if (reason === undefined) { take(); return }
        o.log(`refused a WebSSO callback: ${reason}; still waiting`)
        answer(res, 403, `refused: ${reason}\n`)
      }, (err: unknown) => {
        answer(res, 502, 'client-keystone-auth could not check the token with Keystone\n')
        settle?.reject(err instanceof Error ? err : new Error(String(err)))
      })
    })
  }

  const server = createServer(handle)
  server.keepAliveTimeout = 1000
  port = await listenOnFirstFree(server, o.ports)
  const callback = callbackUrl(port)
  const url = webssoUrl(o.authUrl, o.protocol, o.identityProvider, callback)
  const timer = setTimeout(() => {
    settle?.reject(new WebssoError(ERR.WEBSSO_TIMEOUT, `no WebSSO login arrived at ${callback} within ${Math.round(o.timeoutMs / 1000)} s; log in in the browser window, or open the printed URL yourself (raise --websso-timeout/CLIENT_KEYSTONE_AUTH_WEBSSO_TIMEOUT if you need longer)`))
  }, o.timeoutMs)
  try {
    o.log(`log in to Keystone in your browser${o.browser === undefined ? '' : ' (opening it now)'}; if no browser opens, open this URL:`)
    o.log(`  ${url}`)
    o.onListening?.(callback, url)
    if (o.browser !== undefined) openBrowser(o.browser, url, o.log)
    return await result
  } finally {
    clearTimeout(timer)
    // Let the "you can close this tab" page reach the browser before closing.
    await new Promise<void>(resolve => {
      server.close(() => resolve())
      server.closeIdleConnections()
      setTimeout(() => { server.closeAllConnections(); resolve() }, 2000).unref()
    })
  }
}
