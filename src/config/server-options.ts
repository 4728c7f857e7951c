import { z } from 'zod'
import { LOG_LEVELS } from '../log.js'

/** Token scopes --allowed-token-scopes may name (the kinds of a Keystone token's scope). */
export const SCOPE_KINDS = ['project', 'domain', 'system', 'unscoped'] as const
export type ScopeKind = typeof SCOPE_KINDS[number]

/** --username-format: Keystone's user name alone, or prefixed by its domain's name. */
export const USERNAME_FORMATS = ['name', 'domain/name'] as const
export type UsernameFormat = typeof USERNAME_FORMATS[number]

// The validated options of the webhook server. Flags and env vars (src/cli/server-flags.ts) are
// turned into this object; every rule about a value lives here, with the flag's name in the
// message.

const listen = z.string().refine(s => parseListen(s) !== null, { message: 'expected <host>:<port>, e.g. 0.0.0.0:8443 or [::]:8443' })

export function parseListen (s: string): { host: string, port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(s)
  if (m === null) return null
  const port = Number(m[3])
  if (port > 65535) return null
  const host = m[1] ?? m[2] ?? ''
  return { host: host === '' ? '0.0.0.0' : host, port }
}

const url = z.string({ error: 'is required (or OS_AUTH_URL)' }).refine(s => { try { const u = new URL(s); return u.protocol === 'https:' || u.protocol === 'http:' } catch { return false } },
  { message: 'expected an http(s) URL such as https://keystone.example.com:5000/v3' })

const ms = (max: number) => z.number().int().min(0).max(max)

// Defaults live in the flag table (src/cli/server-flags.ts) and arrive here as if given, so each
// key with a default there is required here.
export const ServerOptions = z.object({
  listen,
  'listen-reuse-port': z.boolean(),
  'metrics-listen': listen.optional(),
  'tls-cert-file': z.string({ error: 'is required (or TLS_CERT_FILE)' }).min(1),
  'tls-private-key-file': z.string({ error: 'is required (or TLS_PRIVATE_KEY_FILE)' }).min(1),
  'client-ca-file': z.string().min(1).optional(),
  'keystone-url': url,
  'keystone-ca-file': z.string().min(1).optional(),
  'keystone-timeout': ms(300_000).refine(v => v > 0, { message: 'must be greater than 0' }),
  'keystone-policy-file': z.string().min(1).optional(),
  'policy-configmap-name': z.string().min(1).optional(),
  'sync-config-file': z.string().min(1).optional(),
  'sync-configmap-name': z.string().min(1).optional(),
  'configmap-namespace': z.string().min(1),
  kubeconfig: z.string().min(1).optional(),
  'user-agent': z.array(z.string()).default([]),
  'token-cache-ttl': ms(24 * 3_600_000),
  'token-cache-negative-ttl': ms(3_600_000),
  'token-cache-size': z.number().int().min(1).max(10_000_000),
  'token-cache-negative-size': z.number().int().min(0).max(10_000_000),
  'keystone-max-inflight': z.number().int().min(0).max(100_000),
  'groups-cache-ttl': ms(3_600_000),
  'revocation-poll-interval': ms(3_600_000),
  'sync-reconcile-interval': ms(7 * 24 * 3_600_000),
  'token-revalidate-interval': ms(24 * 3_600_000),
  'authz-cache-size': z.number().int().min(0).max(10_000_000),
  'authorization-subresource-compat': z.boolean(),
  'authorization-loose-namespaces': z.boolean(),
  // Before 0.2 the loose behaviour was our default and this flag opted out of it; still accepted.
  'authorization-strict-namespaces': z.boolean().optional(),
  'allowed-token-scopes': z.array(z.enum(SCOPE_KINDS, { error: `each must be one of ${SCOPE_KINDS.join(', ')}` }))
    .min(1),
  'username-format': z.enum(USERNAME_FORMATS, { error: `must be one of ${USERNAME_FORMATS.join(', ')}` }),
  'access-rules-service-type': z.string().min(1).optional(),
  'access-rules-enforce': z.boolean(),
  'username-prefix': z.string().default(''),
  'groups-prefix': z.string().default(''),
  'service-credential-id': z.string().min(1).optional(),
  'service-credential-secret': z.string().min(1).optional(),
  'service-credential-secret-file': z.string().min(1).optional(),
  'max-request-bytes': z.number().int().min(1024).max(64 * 1024 * 1024),
  'max-connections': z.number().int().min(0).max(1_000_000),
  'shutdown-grace': ms(600_000),
  workers: z.number().int().min(0).max(256),
  'log-level': z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }),
  v: z.number().int().min(0).optional()
}).superRefine((o, ctx) => {
  const hasSecret = o['service-credential-secret'] !== undefined || o['service-credential-secret-file'] !== undefined
  if ((o['service-credential-id'] !== undefined) !== hasSecret) {
    ctx.addIssue({ code: 'custom', path: ['service-credential-id'], message: 'service mode needs both --service-credential-id and its secret (--service-credential-secret-file or KEYSTONE_SERVICE_CREDENTIAL_SECRET)' })
  }
  const metrics = o['metrics-listen'] !== undefined ? parseListen(o['metrics-listen']) : null
  const reviews = parseListen(o.listen)
  if (metrics !== null && metrics.port !== 0 && metrics.port === reviews?.port) {
    // With SO_REUSEPORT both would join one port group (and a specific address wins over a
    // wildcard one): reviews would land on the metrics listener, which has no review routes.
    ctx.addIssue({ code: 'custom', path: ['metrics-listen'], message: `must use another port than --listen (${o.listen})` })
  }
  if (o['access-rules-enforce'] && o['access-rules-service-type'] === undefined) {
    ctx.addIssue({ code: 'custom', path: ['access-rules-enforce'], message: 'needs --access-rules-service-type (the service type the credentials\' rules name)' })
  }
})

// eslint-disable-next-line @typescript-eslint/no-redeclare -- zod's idiom: the schema and its type share one name
export type ServerOptions = z.output<typeof ServerOptions>
