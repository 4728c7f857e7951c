// The yardstick: a bare Fastify HTTPS route with our TLS settings, JSON body parsing and an
// answer of the same shape as a TokenReview, doing nothing else.
import Fastify from 'fastify'
import { httpsOptions } from '../../dist/server/start/tls.js'

const [port, certFile, keyFile] = process.argv.slice(2)
const app = Fastify({ https: httpsOptions({ certFile, keyFile }) })
const answer = { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', status: { authenticated: true, user: { username: 'demo', uid: 'x'.repeat(32), groups: ['developers', 'y'.repeat(32)], extra: { 'alpha.kubernetes.io/identity/roles': ['member', 'reader'], 'alpha.kubernetes.io/identity/project/id': ['y'.repeat(32)], 'alpha.kubernetes.io/identity/project/name': ['demo'], 'alpha.kubernetes.io/identity/user/domain/id': ['default'], 'alpha.kubernetes.io/identity/user/domain/name': ['Default'] } } } }
app.post('/webhook', async (req) => { void req.body; return answer })
app.get('/healthz', async () => 'ok')
await app.listen({ host: '127.0.0.1', port: Number(port) })
