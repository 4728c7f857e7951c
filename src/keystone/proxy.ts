import { isIP } from 'node:net'
import { ConfigError } from '../errors.js'

// HTTPS_PROXY, HTTP_PROXY and NO_PROXY as the Go binaries read them (Go's
// http.ProxyFromEnvironment, golang.org/x/net/http/httpproxy): users behind a corporate proxy set
// them once for every OpenStack and Kubernetes tool, and expect this one to follow.

/** Either case, upper first; an empty value counts as unset, as in Go. */
function envAny (env: NodeJS.ProcessEnv, ...names: string[]): string | undefined {
  for (const n of names) {
    const v = env[n]
    if (v !== undefined && v !== '') return v
  }
  return undefined
}

function isLoopback (host: string): boolean {
  if (host === 'localhost') return true
  const kind = isIP(host)
  if (kind === 4) return host.startsWith('127.')
  if (kind === 6) return host === '::1' || host === '0:0:0:0:0:0:0:1'
  return false
}

function ipv4ToInt (ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0)
}

/** Whether `entry` of NO_PROXY (a CIDR, an IP, a domain, each with an optional port) covers host:port. */
function covered (entry: string, host: string, port: string): boolean {
  const slash = entry.indexOf('/')
  if (slash > 0) {
    // CIDR: IPv4 only here (Go also matches IPv6 CIDRs; an IPv6 Keystone behind a proxy is rare).
    const base = entry.slice(0, slash)
    const bits = Number(entry.slice(slash + 1))
    if (isIP(base) !== 4 || isIP(host) !== 4 || !Number.isInteger(bits) || bits < 0 || bits > 32) return false
    const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0
    return ((ipv4ToInt(base) & mask) >>> 0) === ((ipv4ToInt(host) & mask) >>> 0)
  }
  let name = entry
  let entryPort = ''
  const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(entry)
  if (bracketed !== null) {
    name = bracketed[1] as string
    entryPort = bracketed[2] ?? ''
  } else if (isIP(entry) !== 6) {
    const colon = entry.lastIndexOf(':')
    if (colon > 0 && /^\d+$/.test(entry.slice(colon + 1))) {
      name = entry.slice(0, colon)
      entryPort = entry.slice(colon + 1)
    }
  }
  if (entryPort !== '' && entryPort !== port) return false
  if (isIP(name) !== 0) return name === host
  if (name.startsWith('*.')) name = name.slice(1)
  // ".example.com" covers its subdomains; "example.com" covers itself and its subdomains.
  if (name.startsWith('.')) return host.endsWith(name)
  return host === name || host.endsWith(`.${name}`)
}

/**
 * The proxy to reach `url` through, or undefined for a direct connection. localhost and loopback
 * addresses are never proxied, as in Go. A proxy setting that is not a valid http:// URL is a
 * ConfigError (Go refuses it too), rather than a silent direct connection; the message never
 * quotes the value, which may hold a password.
 */
export function proxyFor (url: URL, env: NodeJS.ProcessEnv): URL | undefined {
  const names = url.protocol === 'https:' ? ['HTTPS_PROXY', 'https_proxy'] : ['HTTP_PROXY', 'http_proxy']
  const raw = envAny(env, ...names)
  if (raw === undefined) return undefined
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase()
  if (isLoopback(host)) return undefined
  const port = url.port !== '' ? url.port : url.protocol === 'https:' ? '443' : '80'
  const noProxy = envAny(env, 'NO_PROXY', 'no_proxy') ?? ''
  for (const e of noProxy.split(',')) {
    const entry = e.trim().toLowerCase()
    if (entry === '*') return undefined
    if (entry !== '' && covered(entry, host, port)) return undefined
  }
  let proxy: URL
  try {
    // "proxy:3128" without a scheme means http://, as in Go.
    proxy = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`)
  } catch {
    throw new ConfigError(`${names.join('/')} is not a valid proxy URL`)
  }
  if (proxy.protocol !== 'http:') throw new ConfigError(`${names.join('/')}: the proxy ${shownProxy(proxy)} is not an http:// proxy, the only kind supported`)
  return proxy
}

/** The proxy as it may be shown: scheme, host and port, never its user or password. */
export function shownProxy (proxy: URL): string {
  return `${proxy.protocol}//${proxy.host}`
}

/** Proxy-Authorization for a proxy URL with user:password, as Go sends it. */
export function proxyAuthorization (proxy: URL): string | undefined {
  if (proxy.username === '') return undefined
  const user = decodeURIComponent(proxy.username)
  const pass = decodeURIComponent(proxy.password)
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`
}
