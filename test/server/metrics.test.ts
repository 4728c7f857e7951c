// The review metrics are counted in plain numbers and published at scrape time; prom-client's own
// Histogram and Counter, fed the same observations, are the oracle for what /metrics shows.
import { AggregatorRegistry, Counter, Histogram, Registry } from 'prom-client'
import t from 'tap'
import { Metrics, PlainHistogram } from '../../src/server/operations/metrics.js'

const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
// On, between and beyond the bounds, plus values prom-client refuses.
const SAMPLES: Array<[string, number]> = [
  ['TokenReview', 0.0001], ['TokenReview', 0.0005], ['TokenReview', 0.00050001], ['SubjectAccessReview', 0.003],
  ['SubjectAccessReview', 10], ['SubjectAccessReview', 11], ['TokenReview', 0], ['TokenReview', 2.5], ['SubjectAccessReview', 0.042]
]

function both (): { plain: PlainHistogram, plainReg: Registry, oracle: Histogram<'kind'>, oracleReg: Registry } {
  const plainReg = new Registry()
  const oracleReg = new Registry()
  const opts = { name: 'x_duration_seconds', help: 'h' }
  const plain = new PlainHistogram({ ...opts, labelName: 'kind', buckets: BUCKETS, registry: plainReg })
  const oracle = new Histogram({ ...opts, labelNames: ['kind'] as const, buckets: BUCKETS, registers: [oracleReg] })
  for (const [kind, v] of SAMPLES) {
    plain.observe(kind, v)
    oracle.observe({ kind }, v)
  }
  return { plain, plainReg, oracle, oracleReg }
}

t.test('PlainHistogram: the same exposition text as prom-client\'s Histogram', async t => {
  const { plainReg, oracleReg } = both()
  const text = await plainReg.metrics()
  t.equal(text, await oracleReg.metrics())
  t.match(text, /x_duration_seconds_bucket\{le="\+Inf",kind="SubjectAccessReview"\} 4/)
  t.match(text, /x_duration_seconds_bucket\{le="0\.0005",kind="TokenReview"\} 3/)
})

t.test('PlainHistogram: NaN and infinities are not counted (prom-client throws on them)', async t => {
  const { plain, plainReg, oracleReg } = both()
  plain.observe('TokenReview', Number.NaN)
  plain.observe('TokenReview', Number.POSITIVE_INFINITY)
  t.equal(await plainReg.metrics(), await oracleReg.metrics())
})

t.test('PlainHistogram: --workers aggregation sums it like a prom-client histogram', async t => {
  const a = both()
  const b = both()
  const plain = await AggregatorRegistry.aggregate([await a.plainReg.getMetricsAsJSON(), await b.plainReg.getMetricsAsJSON()]).metrics()
  const oracle = await AggregatorRegistry.aggregate([await a.oracleReg.getMetricsAsJSON(), await b.oracleReg.getMetricsAsJSON()]).metrics()
  t.equal(plain, oracle)
  t.match(plain, /x_duration_seconds_count\{kind="TokenReview"\} 10/)
})

t.test('PlainHistogram: resetMetrics empties it', async t => {
  const { plainReg } = both()
  plainReg.resetMetrics()
  t.notMatch(await plainReg.metrics(), /_bucket/)
})

t.test('Metrics: review counts and durations as prom-client would count them', async t => {
  const m = new Metrics({ defaultMetrics: false })
  const oracleReg = new Registry()
  const reviews = new Counter({ name: 'k8s_keystone_auth_reviews_total', help: 'Reviews answered, by kind, API version and outcome', labelNames: ['kind', 'version', 'outcome'] as const, registers: [oracleReg] })
  const calls: Array<[string, string, string]> = [['TokenReview', 'v1', 'authenticated'], ['TokenReview', 'v1', 'authenticated'], ['SubjectAccessReview', 'v1beta1', 'denied'], ['TokenReview', 'unknown', 'bad_request']]
  for (const [kind, version, outcome] of calls) {
    m.countReview(kind, version, outcome)
    reviews.inc({ kind, version, outcome })
  }
  // The same series and values; their order in the text is free.
  const lines = async (r: Registry): Promise<string[]> => (await r.getSingleMetricAsString('k8s_keystone_auth_reviews_total')).split('\n').sort()
  const expected = await lines(oracleReg)
  t.same(await lines(m.registry), expected)
  // A second scrape does not count twice.
  t.same(await lines(m.registry), expected)
  m.countReview('TokenReview', 'v1', 'authenticated')
  t.match(await m.registry.getSingleMetricAsString('k8s_keystone_auth_reviews_total'), /kind="TokenReview",version="v1",outcome="authenticated"\} 3/)
  m.observeReview('TokenReview', 0.002)
  t.match(await m.registry.metrics(), /k8s_keystone_auth_review_duration_seconds_bucket\{le="0\.0025",kind="TokenReview"\} 1/)
})

t.test('Metrics: decision cache lookups are read from the engine when scraped', async t => {
  const m = new Metrics({ defaultMetrics: false })
  let stats = { hits: 0, misses: 0, size: 0 }
  m.decisionCacheStats = () => stats
  t.match(await m.registry.metrics(), /decision_cache_requests_total\{result="hit"\} 0/)
  stats = { hits: 7, misses: 2, size: 5 }
  const text = await m.registry.metrics()
  t.match(text, /decision_cache_requests_total\{result="hit"\} 7/)
  t.match(text, /decision_cache_requests_total\{result="miss"\} 2/)
  t.match(text, /k8s_keystone_auth_decision_cache_entries 5/)
})

t.test('Metrics: token cache lookups as prom-client would count them, stable across scrapes', async t => {
  const m = new Metrics({ defaultMetrics: false })
  for (const r of ['hit', 'hit', 'miss', 'shared', 'hit', 'negative_hit']) m.countTokenCache(r)
  const name = 'k8s_keystone_auth_token_cache_requests_total'
  const text = await m.registry.getSingleMetricAsString(name)
  t.equal(await m.registry.getSingleMetricAsString(name), text, 'a second scrape does not count twice')
  t.match(text, /result="hit"\} 3/)
  t.match(text, /result="miss"\} 1/)
  t.match(text, /result="shared"\} 1/)
  t.match(text, /result="negative_hit"\} 1/)
})

t.test('Metrics: reviews in flight are read when scraped', async t => {
  const m = new Metrics({ defaultMetrics: false })
  m.inflightReviews += 3
  t.match(await m.registry.metrics(), /k8s_keystone_auth_inflight_requests 3/)
  m.inflightReviews -= 3
  t.match(await m.registry.metrics(), /k8s_keystone_auth_inflight_requests 0/)
})
