// The fake apiserver itself speaks the wire protocol the real one does (so the client tests mean
// something): raw HTTP checks, without our client.
import t from 'tap'
import { request } from 'node:https'
import { startFakeKube } from '../helpers/fake-kube.js'

function get (fake: Awaited<ReturnType<typeof startFakeKube>>, path: string, opts: { token?: string, method?: string, body?: unknown, lines?: number } = {}) {
  return new Promise<{ status: number, headers: Record<string, any>, body: string }>((resolve, reject) => {
    const req = request(`${fake.url}${path}`, { method: opts.method ?? 'GET', ca: fake.caPem, headers: { authorization: `Bearer ${opts.token ?? fake.token}`, 'content-type': 'application/json' } }, res => {
      let body = ''
      res.on('data', c => {
        body += c
        if (opts.lines !== undefined && body.split('\n').length > opts.lines) { res.destroy(); resolve({ status: res.statusCode!, headers: res.headers, body }) }
      })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(opts.body === undefined ? undefined : JSON.stringify(opts.body))
  })
}

t.test('Status bodies, list shape, chunked watch with resourceVersion replay, bookmarks, 410 as an ERROR event', async t => {
  const fake = await startFakeKube({ bookmarkIntervalMs: 30 })
  t.teardown(() => fake.close())
  const unauth = await get(fake, '/api/v1/namespaces', { token: 'nope' })
  t.equal(unauth.status, 401)
  t.same(JSON.parse(unauth.body), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 })
  const missing = JSON.parse((await get(fake, '/api/v1/namespaces/nope')).body)
  t.same(missing.details, { name: 'nope', kind: 'namespaces' })
  t.equal(missing.message, 'namespaces "nope" not found')

  const created = await get(fake, '/api/v1/namespaces', { method: 'POST', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n1' } } })
  t.equal(created.status, 201)
  const ns = JSON.parse(created.body)
  t.equal(ns.status.phase, 'Active')
  t.equal(ns.metadata.labels['kubernetes.io/metadata.name'], 'n1')
  const dup = JSON.parse((await get(fake, '/api/v1/namespaces', { method: 'POST', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'n1' } } })).body)
  t.equal(dup.code, 409)
  t.equal(dup.reason, 'AlreadyExists')

  fake.setConfigMap('n1', 'a', { k: '1' })
  const list = JSON.parse((await get(fake, '/api/v1/namespaces/n1/configmaps')).body)
  t.equal(list.kind, 'ConfigMapList')
  t.equal(list.items[0].kind, undefined, 'list items carry no kind')
  const rv0 = Number(list.metadata.resourceVersion)
  fake.setConfigMap('n1', 'a', { k: '2' })
  t.ok(Number(fake.getObject('configmaps', 'n1', 'a')!.metadata.resourceVersion) > rv0, 'resourceVersion increases')

  const w = await get(fake, `/api/v1/namespaces/n1/configmaps?watch=1&allowWatchBookmarks=true&resourceVersion=${rv0}`, { lines: 2 })
  t.equal(w.status, 200)
  t.equal(w.headers['transfer-encoding'], 'chunked')
  const lines = w.body.split('\n').filter(l => l !== '').map(l => JSON.parse(l))
  t.equal(lines[0].type, 'MODIFIED')
  t.equal(lines[0].object.kind, 'ConfigMap', 'watch objects carry kind')
  t.equal(lines[0].object.data.k, '2')
  t.equal(lines[1].type, 'BOOKMARK')

  fake.expireResourceVersions()
  const gone = await get(fake, `/api/v1/namespaces/n1/configmaps?watch=1&resourceVersion=${rv0}`)
  t.equal(gone.status, 200)
  const ev = JSON.parse(gone.body.trim())
  t.equal(ev.type, 'ERROR')
  t.equal(ev.object.code, 410)
  t.equal(ev.object.reason, 'Expired')
  const bad = JSON.parse((await get(fake, '/api/v1/namespaces', { method: 'POST', body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'Bad_Name' } } })).body)
  t.equal(bad.code, 422)
  t.equal(bad.details.causes[0].field, 'metadata.name')
})
