import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

// One registry per server instance (not prom-client's global), so tests and multiple apps in
// one process don't share counters. Labels carry outcomes only, never user data or tokens.

export class Metrics {
  readonly registry = new Registry()

  readonly reviews = new Counter({
    name: 'k8s_keystone_auth_reviews_total',
    help: 'Reviews answered, by kind, API version and outcome',
    labelNames: ['kind', 'version', 'outcome'] as const,
    registers: [this.registry]
  })

  readonly reviewDuration = new Histogram({
    name: 'k8s_keystone_auth_review_duration_seconds',
    help: 'Time to answer a review, by kind',
    labelNames: ['kind'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry]
  })

  readonly keystoneRequests = new Counter({
    name: 'k8s_keystone_auth_keystone_requests_total',
    help: 'HTTP requests to Keystone, by operation and status code (or "error" when none came)',
    labelNames: ['operation', 'status'] as const,
    registers: [this.registry]
  })

  readonly keystoneDuration = new Histogram({
    name: 'k8s_keystone_auth_keystone_request_duration_seconds',
    help: 'Duration of HTTP requests to Keystone, by operation',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry]
  })

  readonly tokenCache = new Counter({
    name: 'k8s_keystone_auth_token_cache_requests_total',
    help: 'Token cache lookups: hit, negative_hit, miss, shared (joined a Keystone call in flight)',
    labelNames: ['result'] as const,
    registers: [this.registry]
  })

  readonly tokenCacheSize = new Gauge({
    name: 'k8s_keystone_auth_token_cache_entries',
    help: 'Entries in the token cache',
    registers: [this.registry],
    // Read at scrape time rather than set on every review.
    collect: () => { this.tokenCacheSize.set(this.tokenCacheEntries()) }
  })

  /** Set by the server to the token cache's size getter. */
  tokenCacheEntries: () => number = () => 0

  readonly decisionCache = new Counter({
    name: 'k8s_keystone_auth_decision_cache_requests_total',
    help: 'Authorization decision cache lookups: hit or miss',
    labelNames: ['result'] as const,
    registers: [this.registry],
    // The engine counts lookups itself; copied here at scrape time, so that a cache hit (the
    // commonest SubjectAccessReview) costs no metric update at all.
    collect: () => {
      const { hits, misses } = this.decisionCacheLookups()
      this.decisionCache.reset()
      this.decisionCache.inc({ result: 'hit' }, hits)
      this.decisionCache.inc({ result: 'miss' }, misses)
    }
  })

  /** Set by the server to the decision cache's lookup counts (cumulative). */
  decisionCacheLookups: () => { hits: number, misses: number } = () => ({ hits: 0, misses: 0 })

  readonly decisionCacheSize = new Gauge({
    name: 'k8s_keystone_auth_decision_cache_entries',
    help: 'Entries in the authorization decision cache',
    registers: [this.registry],
    collect: () => { this.decisionCacheSize.set(this.decisionCacheEntries()) }
  })

  decisionCacheEntries: () => number = () => 0

  readonly inflight = new Gauge({
    name: 'k8s_keystone_auth_inflight_requests',
    help: 'Review requests being answered',
    registers: [this.registry]
  })

  readonly configReloads = new Counter({
    name: 'k8s_keystone_auth_config_reloads_total',
    help: 'Configuration (re)loads by config (policy, sync) and result (ok, error)',
    labelNames: ['config', 'result'] as const,
    registers: [this.registry]
  })

  readonly configLastReloadOk = new Gauge({
    name: 'k8s_keystone_auth_config_last_reload_successful',
    help: '1 when the last load of this configuration succeeded, 0 when the last good one is still in use after an error',
    labelNames: ['config'] as const,
    registers: [this.registry]
  })

  readonly kubeRequests = new Counter({
    name: 'k8s_keystone_auth_kubernetes_requests_total',
    help: 'Requests to the Kubernetes API, by verb, resource and status code (or "error")',
    labelNames: ['verb', 'resource', 'status'] as const,
    registers: [this.registry]
  })

  readonly syncs = new Counter({
    name: 'k8s_keystone_auth_sync_total',
    help: 'Keystone-to-Kubernetes sync runs by outcome: ok, error, skipped, remembered (no API call)',
    labelNames: ['outcome'] as const,
    registers: [this.registry]
  })

  // prom-client hashes the label set on every inc()/observe(); reviews use a handful of label
  // sets, so their children are looked up once and kept.
  readonly #reviewChildren = new Map<string, { inc: (v?: number) => void }>()
  readonly #durationChildren = new Map<string, { observe: (v: number) => void }>()
  readonly #cacheChildren = new Map<string, { inc: (v?: number) => void }>()

  countReview (kind: string, version: string, outcome: string): void {
    const key = `${kind}\0${version}\0${outcome}`
    let child = this.#reviewChildren.get(key)
    if (child === undefined) {
      child = this.reviews.labels({ kind, version, outcome })
      this.#reviewChildren.set(key, child)
    }
    child.inc()
  }

  observeReview (kind: string, seconds: number): void {
    let child = this.#durationChildren.get(kind)
    if (child === undefined) {
      child = this.reviewDuration.labels({ kind })
      this.#durationChildren.set(kind, child)
    }
    child.observe(seconds)
  }

  countTokenCache (result: string): void {
    let child = this.#cacheChildren.get(result)
    if (child === undefined) {
      child = this.tokenCache.labels({ result })
      this.#cacheChildren.set(result, child)
    }
    child.inc()
  }

  constructor (opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'k8s_keystone_auth_' })
  }
}
