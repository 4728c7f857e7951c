import type { Logger } from 'pino'
import type { KeystoneClient } from '../keystone/client.js'
import type { ServiceToken } from '../keystone/service-token.js'
import type { UsernameFormat } from '../config/server-options.js'

// With --username-format name (Go's only form) the Kubernetes username is the Keystone user name
// alone, and user names are unique per domain only: whoever may create users in one domain can
// make a user named like someone of another domain, who then gets that person's bindings. At start
// we say so when Keystone has more than one domain. Only the service credential can list domains
// (GET /v3/domains); without one, or when it may not, there is nothing to say (debug log).

export async function warnOnSharedUsernames (opts: {
  keystone: KeystoneClient
  serviceToken: ServiceToken | undefined
  usernameFormat: UsernameFormat
  logger: Logger
}): Promise<void> {
  const { keystone, serviceToken, usernameFormat, logger } = opts
  if (usernameFormat !== 'name') return
  if (serviceToken === undefined) {
    logger.debug('not in service mode: cannot list Keystone domains to check whether --username-format name can mix users of different domains')
    return
  }
  try {
    const res = await keystone.json('GET', '/domains', await serviceToken.get())
    const domains = res.status === 200 ? domainNames(res.body) : undefined
    if (domains === undefined) {
      logger.debug({ status: res.status }, 'cannot list Keystone domains; not checking whether --username-format name can mix users of different domains')
      return
    }
    if (domains.length > 1) {
      logger.warn({ domains },
        `Keystone has ${domains.length} domains and --username-format is name: users of the same name in different domains become one Kubernetes user (and anyone who can create users in one domain can take another domain's user names); use --username-format domain/name`)
    }
  } catch (err) {
    logger.debug({ err: err instanceof Error ? err.message : String(err) }, 'cannot list Keystone domains; not checking whether --username-format name can mix users of different domains')
  }
}

/** Names of the enabled domains (a disabled domain's users cannot log in). */
function domainNames (body: unknown): string[] | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const list = (body as { domains?: unknown }).domains
  if (!Array.isArray(list)) return undefined
  const names: string[] = []
  for (const d of list) {
    if (typeof d !== 'object' || d === null) continue
    const { name, enabled } = d as { name?: unknown, enabled?: unknown }
    if (enabled === false) continue
    names.push(typeof name === 'string' ? name : '?')
  }
  return names
}
