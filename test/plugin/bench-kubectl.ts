// Benchmark (not a test): wall time of `kubectl get --raw /version` through the plugin, with a
// warm token cache and with the cache off, and of kubectl with a static token (no plugin) as
// the floor. Run after `npx tsc -p tsconfig.json`:
//   BENCH_KEYSTONE_URL=http://127.0.0.1:5000/v3 BENCH_USER=demo BENCH_PASSWORD=demo-pass BENCH_PROJECT=demo \
//   node --import=./node_modules/@tapjs/typescript/dist/esm/import.mjs test/plugin/bench-kubectl.ts [N]
// For a Keystone with its default password-hashing cost, point BENCH_KEYSTONE_URL at one whose
// keystone.conf has no password_hash_rounds override (the dev Keystone uses 4 rounds).
import { startFakeApiServer } from '../helpers/fake-apiserver.js'
import { keystoneAuthenticator, kubectl, sandbox, writeKubeconfig } from './_support.js'
import { writeFileSync } from 'node:fs'
import { keystoneFetch } from '../helpers/keystone-fetch.js'

const N = Number(process.argv[2] ?? 20)
const url = process.env.BENCH_KEYSTONE_URL ?? 'http://127.0.0.1:5000/v3'
const env = {
  OS_AUTH_URL: url,
  OS_USERNAME: process.env.BENCH_USER ?? 'demo',
  OS_DOMAIN_NAME: process.env.BENCH_DOMAIN ?? 'Default',
  OS_PROJECT_NAME: process.env.BENCH_PROJECT ?? 'demo',
  OS_PASSWORD: process.env.BENCH_PASSWORD ?? 'demo-pass'
}
const authn = keystoneAuthenticator(url)
const api = await startFakeApiServer({ authenticate: authn.authenticate })

async function measure (label: string, sbEnv: NodeJS.ProcessEnv): Promise<void> {
  const first = await kubectl(['get', '--raw', '/version'], sbEnv)
  if (first.code !== 0) throw new Error(`${label}: ${first.stderr}`)
  const times: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    const r = await kubectl(['get', '--raw', '/version'], sbEnv)
    times.push(performance.now() - t0)
    if (r.code !== 0) throw new Error(`${label}: ${r.stderr}`)
  }
  times.sort((a, b) => a - b)
  const mean = times.reduce((a, b) => a + b, 0) / times.length
  console.log(`${label.padEnd(34)} n=${N}  median ${times[Math.floor(N / 2)]!.toFixed(0)} ms  mean ${mean.toFixed(0)} ms  min ${times[0]!.toFixed(0)} ms  max ${times.at(-1)!.toFixed(0)} ms`)
}

try {
  const warm = sandbox()
  writeKubeconfig(warm.kubeconfig, api, { apiVersion: 'client.authentication.k8s.io/v1', env })
  await measure('plugin, warm cache', warm.env)
  const off = sandbox()
  writeKubeconfig(off.kubeconfig, api, { apiVersion: 'client.authentication.k8s.io/v1', env, args: ['--no-cache'] })
  await measure('plugin, cache off (login per run)', off.env)
  // Floor: the same kubectl call with a static token and no plugin.
  const res = await keystoneFetch(`${url}/auth/tokens?nocatalog`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ auth: { identity: { methods: ['password'], password: { user: { name: env.OS_USERNAME, domain: { name: env.OS_DOMAIN_NAME }, password: env.OS_PASSWORD } } }, scope: { project: { name: env.OS_PROJECT_NAME, domain: { name: env.OS_DOMAIN_NAME } } } } })
  })
  const token = res.headers.get('x-subject-token') ?? ''
  const st = sandbox()
  writeFileSync(st.kubeconfig, JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'c',
    clusters: [{ name: 'c', cluster: { server: api.url, 'certificate-authority-data': Buffer.from(api.caPem).toString('base64') } }],
    users: [{ name: 'u', user: { token } }],
    contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }]
  }), { mode: 0o600 })
  await measure('static token, no plugin (floor)', st.env)
} finally {
  await api.close()
  await authn.close()
}
