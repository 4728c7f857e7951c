import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type Metric } from 'prom-client'

// One registry per server instance (not prom-client's global), so tests and multiple apps in
// one process don't share counters. Labels carry outcomes only, never user data or tokens.

/** A counter in this registry, with our prefix; updated as events happen (no collect hook). */
function counter<L extends string = never> (registry: Registry, name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  return new Counter<L>({ name: `k8s_keystone_auth_${name}`, help, labelNames, registers: [registry] })
}

/** A gauge without labels whose value is read when /metrics is scraped. */
function scraped (registry: Registry, name: string, help: string, read: () => number): Gauge {
  return new Gauge({ name: `k8s_keystone_auth_${name}`, help, registers: [registry], collect () { this.set(read()) } })
}

export class Metrics {
  readonly registry = new Registry()

  // Counted per review in plain numbers and copied into prom-client when scraped: prom-client
  // validates and hashes the label set on every inc()/observe(), even on a labelled child, which
  // was about 3 % of the CPU of a cached review.
  readonly #reviewCounts = new Map<string, Map<string, Map<string, { labels: { kind: string, version: string, outcome: string }, n: number }>>>()

  readonly reviews = new Counter({
    name: 'k8s_keystone_auth_reviews_total',
    help: 'Reviews answered, by kind, API version and outcome',
    labelNames: ['kind', 'version', 'outcome'] as const,
    registers: [this.registry],
    collect: () => {
      this.reviews.reset()
      for (const byVersion of this.#reviewCounts.values()) {
        for (const byOutcome of byVersion.values()) {
          for (const { labels, n } of byOutcome.values()) this.reviews.inc(labels, n)
        }
      }
    }
  })

  readonly reviewDuration = new PlainHistogram({
    name: 'k8s_keystone_auth_review_duration_seconds',
    help: 'Time to answer a review, by kind',
    labelName: 'kind',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registry: this.registry
  })

  readonly keystoneRequests = counter(this.registry, 'keystone_requests_total', 'HTTP requests to Keystone, by operation and status code (or "error" when none came)', ['operation', 'status'] as const)

  readonly keystoneDuration = new Histogram({
    name: 'k8s_keystone_auth_keystone_request_duration_seconds',
    help: 'Duration of HTTP requests to Keystone, by operation',
    labelNames: ['operation'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry]
  })

  readonly #tokenCacheCounts = new Map<string, number>()

  readonly tokenCache = new Counter({
    name: 'k8s_keystone_auth_token_cache_requests_total',
    help: 'Token cache lookups: hit, negative_hit, miss, shared (joined a Keystone call in flight)',
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: () => {
      this.tokenCache.reset()
      for (const [result, n] of this.#tokenCacheCounts) this.tokenCache.inc({ result }, n)
    }
  })

  // Read at scrape time rather than set on every review.
  readonly tokenCacheSize = scraped(this.registry, 'token_cache_entries', 'Entries in the token cache', () => this.tokenCacheEntries())

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
      const { hits, misses } = this.decisionCacheStats()
      this.decisionCache.reset()
      this.decisionCache.inc({ result: 'hit' }, hits)
      this.decisionCache.inc({ result: 'miss' }, misses)
    }
  })

  /** Set by the server to the decision cache's size and lookup counts (cumulative), read when scraped. */
  decisionCacheStats: () => { hits: number, misses: number, size: number } = () => ({ hits: 0, misses: 0, size: 0 })

  readonly decisionCacheSize = scraped(this.registry, 'decision_cache_entries', 'Entries in the authorization decision cache', () => this.decisionCacheStats().size)

  /** TokenReviews being answered; read when scraped (a prom-client inc/dec pair per review cost more). */
  inflightReviews = 0

  readonly inflight = scraped(this.registry, 'inflight_requests', 'Review requests being answered', () => this.inflightReviews)

  readonly keystoneBusy = counter(this.registry, 'keystone_validations_refused_total', 'TokenReviews answered HTTP 500 because --keystone-max-inflight validations were running and as many waiting')

  readonly connectionsRefused = counter(this.registry, 'connections_refused_total', 'Connections closed unread on arrival because --max-connections connections were open')

  /** Set by the server to the authenticator's validation counts, read when scraped. */
  keystoneValidations: () => { running: number, waiting: number } = () => ({ running: 0, waiting: 0 })

  readonly keystoneValidationsNow = new Gauge({
    name: 'k8s_keystone_auth_keystone_validations',
    help: 'Token validations talking to Keystone (state="running", at most --keystone-max-inflight) or waiting for a turn (state="waiting")',
    labelNames: ['state'] as const,
    registers: [this.registry],
    collect: () => {
      const v = this.keystoneValidations()
      this.keystoneValidationsNow.set({ state: 'running' }, v.running)
      this.keystoneValidationsNow.set({ state: 'waiting' }, v.waiting)
    }
  })

  readonly configReloads = counter(this.registry, 'config_reloads_total', 'Configuration (re)loads by config (policy, sync) and result (ok, error)', ['config', 'result'] as const)

  readonly configLastReloadOk = new Gauge({
    name: 'k8s_keystone_auth_config_last_reload_successful',
    help: '1 when the last load of this configuration succeeded, 0 when the last good one is still in use after an error',
    labelNames: ['config'] as const,
    registers: [this.registry]
  })

  readonly kubeRequests = counter(this.registry, 'kubernetes_requests_total', 'Requests to the Kubernetes API, by verb, resource and status code (or "error")', ['verb', 'resource', 'status'] as const)

  readonly revocationPolls = counter(this.registry, 'revocation_polls_total', 'Reads of Keystone\'s revocation events (service mode), by result: ok, error', ['result'] as const)

  readonly revocationEvents = counter(this.registry, 'revocation_events_total', 'Keystone revocation events applied to the caches')

  readonly revocationEvicted = counter(this.registry, 'revocation_evicted_total', 'Cached tokens dropped because a Keystone revocation event revokes them')

  readonly revalidations = counter(this.registry, 'token_revalidations_total', 'Background re-validations of cached tokens (--token-revalidate-interval), by result: ok, revoked (dropped), error (kept)', ['result'] as const)

  readonly revocationLag = new Histogram({
    name: 'k8s_keystone_auth_revocation_lag_seconds',
    help: 'From an event\'s revoked_at in Keystone to its cached tokens being dropped here',
    buckets: [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300],
    registers: [this.registry]
  })

  readonly reconcilePasses = counter(this.registry, 'sync_reconcile_passes_total', 'Passes of the sync reconcile (--sync-reconcile-interval), by result: ok, error (stopped, nothing more removed)', ['result'] as const)

  readonly reconcileRemovals = counter(this.registry, 'sync_reconcile_removals_total', 'RoleBindings made by sync and removed by the reconcile, by reason: role_removed, project_disabled, project_deleted', ['reason'] as const)

  readonly namespacesOrphaned = counter(this.registry, 'namespaces_orphaned_total', 'Namespaces labelled k8s-keystone-auth/orphaned=true because their Keystone project was deleted')

  readonly syncs = counter(this.registry, 'sync_total', 'Keystone-to-Kubernetes sync runs by outcome: ok, error, skipped, remembered (no API call)', ['outcome'] as const)

  countReview (kind: string, version: string, outcome: string): void {
    // Nested maps: the labels are short constants, and no key string is built per review.
    let byVersion = this.#reviewCounts.get(kind)
    if (byVersion === undefined) this.#reviewCounts.set(kind, byVersion = new Map())
    let byOutcome = byVersion.get(version)
    if (byOutcome === undefined) byVersion.set(version, byOutcome = new Map())
    const count = byOutcome.get(outcome)
    if (count !== undefined) count.n++
    else byOutcome.set(outcome, { labels: { kind, version, outcome }, n: 1 })
  }

  observeReview (kind: string, seconds: number): void {
    this.reviewDuration.observe(kind, seconds)
  }

  countTokenCache (result: string): void {
    this.#tokenCacheCounts.set(result, (this.#tokenCacheCounts.get(result) ?? 0) + 1)
  }

  constructor (opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'k8s_keystone_auth_' })
  }
}

interface Series { counts: Float64Array, sum: number, count: number }

interface HistogramValue { metricName: string, labels: Record<string, string | number>, value: number }

/**
 * A histogram with one label, kept in plain arrays, for the per-review hot path. It is registered
 * in a prom-client Registry as a metric of its own: get() returns what prom-client's Histogram
 * returns (cumulative `_bucket` values with `le`, then `_sum` and `_count`), so /metrics, the
 * cluster aggregation of --workers and registry.resetMetrics() treat it like any other.
 */
export class PlainHistogram {
  readonly name: string
  readonly help: string
  readonly type = 'histogram' as const
  readonly aggregator = 'sum' as const
  /** As prom-client's metrics have it (the metrics reference lists it). */
  get labelNames (): readonly string[] { return [this.#labelName] }
  readonly #labelName: string
  readonly #bounds: number[]
  readonly #series = new Map<string, Series>()

  constructor (opts: { name: string, help: string, labelName: string, buckets: number[], registry: Registry }) {
    this.name = opts.name
    this.help = opts.help
    this.#labelName = opts.labelName
    this.#bounds = [...opts.buckets].sort((a, b) => a - b)
    opts.registry.registerMetric(this as unknown as Metric)
  }

  observe (labelValue: string, value: number): void {
    if (!Number.isFinite(value)) return
    let s = this.#series.get(labelValue)
    if (s === undefined) {
      s = { counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 }
      this.#series.set(labelValue, s)
    }
    let i = 0
    while (i < this.#bounds.length && value > (this.#bounds[i] as number)) i++
    s.counts[i] = (s.counts[i] as number) + 1
    s.sum += value
    s.count++
  }

  async get (): Promise<{ name: string, help: string, type: 'histogram', aggregator: 'sum', values: HistogramValue[] }> {
    const values: HistogramValue[] = []
    for (const [labelValue, s] of this.#series) {
      let cumulative = 0
      for (let i = 0; i <= this.#bounds.length; i++) {
        cumulative += s.counts[i] as number
        values.push({ metricName: `${this.name}_bucket`, labels: { le: i < this.#bounds.length ? this.#bounds[i] as number : '+Inf', [this.#labelName]: labelValue }, value: cumulative })
      }
      values.push({ metricName: `${this.name}_sum`, labels: { [this.#labelName]: labelValue }, value: s.sum })
      values.push({ metricName: `${this.name}_count`, labels: { [this.#labelName]: labelValue }, value: s.count })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  reset (): void {
    this.#series.clear()
  }
}
