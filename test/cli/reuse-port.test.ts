// Which Node binds with SO_REUSEPORT (net's `reusePort`: Node 22.12+ and 23.1+, on Linux), and
// when a listener uses it: asked for, supported, and a fixed port (port 0 is never shared).
import t from 'tap'
import { reusePortSupported, reusePortUnsupportedMessage, useReusePort } from '../../src/server/start/listen.js'

t.test('Node versions and platforms with reusePort', async t => {
  for (const v of ['20.18.1', '20.20.2', '22.11.0', '23.0.0']) t.notOk(reusePortSupported(v, 'linux'), `Node ${v}: no`)
  for (const v of ['22.12.0', '22.20.1', '23.1.0', '24.0.0', '26.12.1', 'v26.0.0']) t.ok(reusePortSupported(v, 'linux'), `Node ${v}: yes`)
  t.notOk(reusePortSupported('26.12.1', 'darwin'), 'Linux only (Node refuses it on some platforms)')
  t.match(reusePortUnsupportedMessage('20.20.2'), /Node 20\.20\.2.*maxSurge: 0, maxUnavailable: 1/)
})

t.test('a listener uses SO_REUSEPORT when asked, supported, on a fixed port', async t => {
  t.ok(useReusePort(true, 8443, true))
  t.notOk(useReusePort(false, 8443, true), '--listen-reuse-port=false')
  t.notOk(useReusePort(true, 8443, false), 'unsupported')
  t.notOk(useReusePort(true, 0, true), 'port 0: no partner could know it; with --workers each worker would get its own')
})
