// deploy/ (unit tier: offline, no server; the probes against a running server are in
// manifest-probes.test.ts): `kubectl kustomize deploy/` builds (offline, kubectl v1.32), every object it emits and
// the static pod validate against the Kubernetes schemas (strict about field names), and the
// pieces fit together: names, selectors, ports, the TLS Secret, ConfigMaps and RBAC, and the
// security and placement settings the operator guide promises.
// Every variant (the base, with cert-manager, with the optional Service or metrics listener, the
// static pod) listens on 127.0.0.1 with hostNetwork and requires kube-apiserver's client certificate (--client-ca-file
// from a mounted Secret or hostPath); its probes reach paths that need no client certificate.
// (Security review, finding 3: the Deployment used to listen on 0.0.0.0 behind a Service, without
// client certificates: any pod could use it as a token oracle.)
import t from 'tap'
import { execFile } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parseAllDocuments, parse as parseYaml } from 'yaml'
import { k8sProblems } from './k8s-schema.js'
import { parseSyncConfig } from '../../src/config/sync-config.js'
import { DEFAULT_WEBHOOK_URL } from '../../src/config/apiserver-config.js'
import { parseFlags } from '../../src/config/flags.js'
import { SERVER_FLAGS } from '../../src/cli/server-flags.js'
import { serverOptionsFrom } from '../../src/cli/k8s-keystone-auth.js'

const exec = promisify(execFile)
const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const DEPLOY = join(ROOT, 'deploy')

const yamlDocs = (text: string): any[] => parseAllDocuments(text).map(d => {
  if (d.errors.length > 0) throw new Error(d.errors.map(e => e.message).join('; '))
  return d.toJS()
}).filter(d => d !== null)

async function kustomize (dir: string): Promise<any[]> {
  const { stdout } = await exec('kubectl', ['kustomize', dir], { maxBuffer: 16 * 1024 * 1024 })
  return yamlDocs(stdout)
}

const find = (docs: any[], kind: string, name?: string): any => {
  const d = docs.find(x => x.kind === kind && (name === undefined || x.metadata?.name === name))
  if (d === undefined) throw new Error(`no ${kind} ${name ?? ''} in the build`)
  return d
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v)

/** A flag's value in the container's args (`--name=value`), or its env var. */
const flagValue = (c: any, name: string, env: string): string | undefined =>
  (c.args ?? []).find((a: string) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ??
  (c.env ?? []).find((e: any) => e.name === env)?.value

/** --client-ca-file of a pod (DaemonSet or Pod), and the read-only volume it is on. */
function clientCaFileOf (obj: any): { path: string, volume: any } {
  const pod = obj.kind === 'DaemonSet' ? obj.spec.template.spec : obj.spec
  const c = pod.containers[0]
  const path = flagValue(c, 'client-ca-file', 'TLS_CLIENT_CA_FILE')
  if (path === undefined) throw new Error(`${obj.kind}/${obj.metadata.name}: no --client-ca-file`)
  const mount = c.volumeMounts.find((m: any) => path.startsWith(`${m.mountPath}/`))
  if (mount === undefined) throw new Error(`${obj.kind}/${obj.metadata.name}: --client-ca-file ${path} is on no volume`)
  if (mount.readOnly !== true) throw new Error(`${obj.kind}/${obj.metadata.name}: the client CA volume is writable`)
  return { path, volume: pod.volumes.find((v: any) => v.name === mount.name) }
}

/** An overlay next to a copy of deploy/ using the base and these components. */
async function overlay (components: string[]): Promise<any[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-variant-'))
  cpSync(DEPLOY, join(dir, 'deploy'), { recursive: true })
  mkdirSync(join(dir, 'o'))
  writeFileSync(join(dir, 'o/kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    '- ../deploy',
    ...(components.length > 0 ? ['components:', ...components.map(c => `- ../deploy/${c}`)] : []),
    ''
  ].join('\n'))
  return await kustomize(join(dir, 'o'))
}

t.test('kubectl kustomize deploy/ builds, and every object validates against the Kubernetes schemas', async t => {
  const docs = await kustomize(DEPLOY)
  const kinds = docs.map(d => d.kind).sort()
  t.same(kinds, ['ClusterRole', 'ClusterRoleBinding', 'ConfigMap', 'ConfigMap', 'DaemonSet',
    'Role', 'RoleBinding', 'ServiceAccount'].sort(), 'the base holds exactly these objects (no Service: only kube-apiserver on the node calls it; no PDB: see daemonset.yaml)')
  for (const d of docs) {
    t.same(await k8sProblems(d), [], `${d.kind}/${d.metadata.name} is valid`)
    t.equal(d.metadata.namespace ?? 'kube-system', 'kube-system', `${d.kind}/${d.metadata.name} is in kube-system (or cluster-scoped)`)
  }
  const clusterRoles = docs.filter(d => d.kind === 'ClusterRoleBinding').map(d => d.roleRef.name)
  t.notOk(clusterRoles.includes('cluster-admin'), 'nothing binds cluster-admin')
})

t.test('the schema check fails on what kube-apiserver would refuse', async t => {
  const dep = find(await kustomize(DEPLOY), 'DaemonSet')
  const typo = structuredClone(dep)
  typo.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true
  t.match((await k8sProblems(typo)).join('\n'), /unknown field "readOnlyRootFileSystem"/)
  const badType = structuredClone(dep)
  badType.spec.revisionHistoryLimit = 'five'
  t.match((await k8sProblems(badType)).join('\n'), /revisionHistoryLimit/)
  const deploymentField = structuredClone(dep)
  deploymentField.spec.replicas = 2
  t.match((await k8sProblems(deploymentField)).join('\n'), /unknown field "replicas"/, 'a DaemonSet has no replicas')
  const badEnum = structuredClone(dep)
  badEnum.spec.template.spec.containers[0].readinessProbe.httpGet.scheme = 'HTTPX'
  t.match((await k8sProblems(badEnum)).join('\n'), /scheme/)
  const noName = structuredClone(dep)
  delete noName.spec.template.spec.containers[0].name
  t.match((await k8sProblems(noName)).join('\n'), /name/)
  await t.rejects(k8sProblems({ apiVersion: 'example.com/v1', kind: 'Thing' }), /no schema/)
})

t.test('DaemonSet on every control-plane node, surge rollouts: no ports (no host port), loopback probes', async t => {
  // The rendered pod template, as the API server gets it.
  const ds = find(await kustomize(DEPLOY), 'DaemonSet', 'k8s-keystone-auth')
  const pod = ds.spec.template.spec
  t.equal(pod.hostNetwork, true, 'hostNetwork: kube-apiserver calls https://127.0.0.1:8443')
  t.same(pod.nodeSelector, { 'node-role.kubernetes.io/control-plane': '' }, 'on control-plane nodes only')
  t.ok(pod.tolerations.some((x: any) => x.key === 'node-role.kubernetes.io/control-plane' && x.effect === 'NoSchedule' && x.operator === 'Exists'), 'tolerates the control-plane taint')
  t.same(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } }, 'the new pod starts beside the old one, none is stopped first')
  for (const c of [...pod.containers, ...(pod.initContainers ?? [])]) {
    // On the host network a containerPort is a hostPort: the scheduler would keep the surge pod
    // off the node where the old pod holds it.
    t.notOk('ports' in c, `${c.name}: declares no ports`)
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'].map(k => c[k]).filter(p => p !== undefined)) {
      t.ok(probe.httpGet !== undefined, `${c.name}: probes over HTTP(S), not a TCP connect that any listener in the port group would answer`)
      t.equal(probe.httpGet.host, '127.0.0.1', `${c.name}: ${probe.httpGet.path} probed on the node's loopback`)
      t.equal(typeof probe.httpGet.port, 'number', `${c.name}: ${probe.httpGet.path} by port number (no named port to refer to)`)
    }
  }
})

t.test('DaemonSet: placement, networking, health, resources and security as documented', async t => {
  const docs = await kustomize(DEPLOY)
  const dep = find(docs, 'DaemonSet', 'k8s-keystone-auth')
  const pod = dep.spec.template.spec
  const c = pod.containers.find((x: any) => x.name === 'k8s-keystone-auth')
  t.equal(pod.hostNetwork, true)
  t.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet')
  t.equal(pod.priorityClassName, 'system-node-critical', 'as critical as kube-apiserver on its node')
  t.ok(matches(dep.spec.selector.matchLabels, dep.spec.template.metadata.labels), 'selector matches the pod labels')
  t.ok(pod.terminationGracePeriodSeconds * 1000 > 10_000, 'the kubelet waits longer than --shutdown-grace (10s) before SIGKILL')
  t.notOk(c.args.some((a: string) => a.startsWith('--listen-reuse-port')), 'SO_REUSEPORT is left on (the default)')

  // health
  const listen = c.args.find((a: string) => a.startsWith('--listen='))?.split(':').pop()
  t.equal(listen, new URL(DEFAULT_WEBHOOK_URL).port, 'gen apiserver-config defaults to the --listen port')
  t.match(c.livenessProbe.httpGet, { path: '/healthz', scheme: 'HTTPS', port: Number(listen), host: '127.0.0.1' })
  t.match(c.readinessProbe.httpGet, { path: '/readyz', scheme: 'HTTPS', port: Number(listen), host: '127.0.0.1' })
  t.equal(c.args[0], '--listen=127.0.0.1:8443', 'listens on the node\'s loopback only, first argument (deploy/service/ replaces it)')
  const clientCa = clientCaFileOf(dep)
  t.same(clientCa.volume.secret, { secretName: 'k8s-keystone-auth-client-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o440 }, 'client CA from Secret k8s-keystone-auth-client-ca, key ca.crt')

  // resources and security
  t.ok(c.resources.requests.cpu !== undefined && c.resources.requests.memory !== undefined && c.resources.limits.memory !== undefined, 'requests and a memory limit')
  t.equal(pod.securityContext.runAsNonRoot, true)
  t.ok(pod.securityContext.runAsUser > 0, 'numeric non-root uid')
  t.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault')
  t.match(c.securityContext, { runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' } })
  t.notOk(c.securityContext.privileged, 'not privileged')
  t.notOk(c.securityContext.capabilities.add, 'adds no capability')

  // identity and TLS
  const sa = find(docs, 'ServiceAccount')
  t.equal(pod.serviceAccountName, sa.metadata.name)
  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]))
  const tlsVol = pod.volumes.find((v: any) => v.secret !== undefined)
  const tlsMount = c.volumeMounts.find((m: any) => m.name === tlsVol.name)
  t.equal(tlsMount.readOnly, true)
  t.equal(env.TLS_CERT_FILE, `${tlsMount.mountPath}/tls.crt`, 'cert file is in the mounted kubernetes.io/tls Secret')
  t.equal(env.TLS_PRIVATE_KEY_FILE, `${tlsMount.mountPath}/tls.key`)
  t.equal(pod.securityContext.fsGroup, pod.securityContext.runAsGroup, 'the non-root user can read the 0440 Secret files through fsGroup')
  t.equal(tlsVol.secret.defaultMode & 0o004, 0, 'the key is not world-readable')
  for (const m of c.volumeMounts) {
    if (m.readOnly !== true) t.ok(pod.volumes.find((v: any) => v.name === m.name).emptyDir !== undefined, `writable mount ${m.mountPath} is an emptyDir`)
  }
  t.ok(env.OS_AUTH_URL?.startsWith('https://'), 'Keystone URL placeholder is https')
})

t.test('ConfigMaps and RBAC fit the DaemonSet', async t => {
  const docs = await kustomize(DEPLOY)
  const dep = find(docs, 'DaemonSet')
  const c = dep.spec.template.spec.containers[0]

  const env = Object.fromEntries(c.env.map((e: any) => [e.name, e.value]))
  const policyCm = find(docs, 'ConfigMap', env.KEYSTONE_POLICY_CONFIGMAP_NAME)
  const syncCm = find(docs, 'ConfigMap', env.KEYSTONE_SYNC_CONFIGMAP_NAME)
  t.same(JSON.parse(policyCm.data.policies), JSON.parse(readFileSync(join(ROOT, 'config/policy.json'), 'utf8')), 'policy ConfigMap = config/policy.json')
  t.equal(syncCm.data.syncConfig, readFileSync(join(ROOT, 'config/sync-config.yaml'), 'utf8'), 'sync ConfigMap = config/sync-config.yaml')
  t.doesNotThrow(() => parseSyncConfig(syncCm.data.syncConfig, 'ConfigMap keystone-sync-policy'), 'the sync config parses')
  t.same(c.env.find((e: any) => e.name === 'KEYSTONE_CONFIGMAP_NAMESPACE').valueFrom.fieldRef.fieldPath, 'metadata.namespace')

  const role = docs.find(d => d.kind === 'Role' && d.rules.some((r: any) => r.resources.includes('configmaps')))
  t.equal(role.metadata.namespace, dep.metadata.namespace, 'ConfigMap Role is in the ConfigMaps\' namespace')
  const names = role.rules.flatMap((r: any) => r.resourceNames ?? [])
  t.ok(names.includes(policyCm.metadata.name) && names.includes(syncCm.metadata.name), 'RBAC names both ConfigMaps')
})

t.test('cert-manager component: the Certificate fills the Secret the DaemonSet mounts, with IP:127.0.0.1', async t => {
  // As the operator guide does it: an overlay next to deploy/ using the base and the component.
  const dir = mkdtempSync(join(tmpdir(), 'ksa-overlay-'))
  cpSync(DEPLOY, join(dir, 'deploy'), { recursive: true })
  mkdirSync(join(dir, 'my-cluster'))
  writeFileSync(join(dir, 'my-cluster/kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    '- ../deploy',
    'components:',
    '- ../deploy/cert-manager',
    'images:',
    '- name: k8s-keystone-auth',
    '  newName: registry.example.com/k8s-keystone-auth',
    '  newTag: 0.1.0',
    'patches:',
    '- patch: |-',
    '    apiVersion: apps/v1',
    '    kind: DaemonSet',
    '    metadata:',
    '      name: k8s-keystone-auth',
    '      namespace: kube-system',
    '    spec:',
    '      template:',
    '        spec:',
    '          containers:',
    '          - name: k8s-keystone-auth',
    '            env:',
    '            - name: OS_AUTH_URL',
    '              value: https://keystone.internal:5000/v3',
    ''
  ].join('\n'))
  const docs = await kustomize(join(dir, 'my-cluster'))
  const dep = find(docs, 'DaemonSet')
  const c = dep.spec.template.spec.containers[0]
  t.equal(c.image, 'registry.example.com/k8s-keystone-auth:0.1.0', 'image set by the overlay')
  t.equal(c.env.find((e: any) => e.name === 'OS_AUTH_URL').value, 'https://keystone.internal:5000/v3', 'OS_AUTH_URL patched by name')
  t.equal(c.env.length, find(await kustomize(DEPLOY), 'DaemonSet').spec.template.spec.containers[0].env.length, 'the patch keeps the other env vars')
  for (const d of docs.filter(x => !String(x.apiVersion).startsWith('cert-manager.io/'))) t.same(await k8sProblems(d), [], `${d.kind}/${d.metadata.name} is valid`)

  const certs = docs.filter(d => d.kind === 'Certificate')
  const issuers = docs.filter(d => d.kind === 'Issuer')
  t.equal(certs.length, 3)
  t.equal(issuers.length, 2)
  const secretName = dep.spec.template.spec.volumes.find((v: any) => v.secret !== undefined).secret.secretName
  const serving = certs.find(x => x.spec.secretName === secretName)
  t.ok(serving, 'a Certificate writes the mounted Secret')
  t.ok(serving.spec.ipAddresses.includes(new URL(DEFAULT_WEBHOOK_URL).hostname), 'SANs include the default webhook host')
  t.ok(serving.spec.usages.includes('server auth'))
  t.notOk(serving.spec.isCA)
  // Each issuerRef names an Issuer here; the CA Issuer reads the CA Certificate's Secret.
  for (const cert of certs) t.ok(issuers.some(i => i.metadata.name === cert.spec.issuerRef.name && cert.spec.issuerRef.kind === 'Issuer'), `${cert.metadata.name} has its Issuer`)
  const caIssuer = issuers.find(i => i.metadata.name === serving.spec.issuerRef.name)
  t.ok(certs.some(x => x.spec.isCA === true && x.spec.secretName === caIssuer.spec.ca.secretName), 'the serving cert is signed by the private CA')
  // kube-apiserver's client certificate comes from the same private CA, and the webhook's
  // --client-ca-file reads that CA (ca.crt of the serving certificate's Secret).
  const client = certs.find(x => x.metadata.name === 'k8s-keystone-auth-apiserver-client')
  t.ok(client, 'a Certificate for kube-apiserver\'s client pair')
  t.same(client.spec.usages.filter((u: string) => u.endsWith(' auth')), ['client auth'], 'client auth only: it cannot serve')
  t.notOk(serving.spec.usages.includes('client auth'), 'the serving certificate cannot be a client')
  t.equal(client.spec.issuerRef.name, serving.spec.issuerRef.name, 'same CA Issuer as the serving certificate')
  const caFile = clientCaFileOf(dep)
  t.same(caFile.volume.secret, { secretName, items: [{ key: 'ca.crt', path: 'ca.crt' }], defaultMode: 0o440 }, '--client-ca-file is ca.crt of the serving certificate\'s Secret (the issuing CA), not a Secret that must be made by hand')
  t.notOk(docs.some(d => d.kind === 'Secret'), 'no Secret with a CA key is mounted or made')
  // cert-manager v1 field names (no schema package here: a strict list of the fields used).
  const CERT_SPEC = new Set(['isCA', 'commonName', 'secretName', 'duration', 'renewBefore', 'privateKey', 'issuerRef', 'ipAddresses', 'dnsNames', 'usages'])
  for (const cert of certs) {
    t.same(Object.keys(cert.spec).filter(k => !CERT_SPEC.has(k)), [], `${cert.metadata.name}: known Certificate fields`)
    t.same(Object.keys(cert.spec.privateKey).filter(k => !['algorithm', 'size', 'rotationPolicy', 'encoding'].includes(k)), [])
    t.match(cert.spec.duration, /^\d+h$/)
  }
})

t.test('operator guide: Keystone behind a private CA (configMapGenerator + patch) builds and wires KEYSTONE_CA_FILE', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'ksa-overlay-ca-'))
  cpSync(DEPLOY, join(dir, 'deploy'), { recursive: true })
  mkdirSync(join(dir, 'my-cluster'))
  const caPem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
  writeFileSync(join(dir, 'my-cluster/keystone-ca.crt'), caPem)
  writeFileSync(join(dir, 'my-cluster/kustomization.yaml'), [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    'resources:',
    '- ../deploy',
    'configMapGenerator:',
    '- name: keystone-ca',
    '  namespace: kube-system',
    '  files:',
    '  - ca.crt=keystone-ca.crt',
    'patches:',
    '- patch: |-',
    '    apiVersion: apps/v1',
    '    kind: DaemonSet',
    '    metadata:',
    '      name: k8s-keystone-auth',
    '      namespace: kube-system',
    '    spec:',
    '      template:',
    '        spec:',
    '          containers:',
    '          - name: k8s-keystone-auth',
    '            env:',
    '            - name: KEYSTONE_CA_FILE',
    '              value: /etc/k8s-keystone-auth/keystone-ca/ca.crt',
    '            volumeMounts:',
    '            - name: keystone-ca',
    '              mountPath: /etc/k8s-keystone-auth/keystone-ca',
    '              readOnly: true',
    '          volumes:',
    '          - name: keystone-ca',
    '            configMap:',
    '              name: keystone-ca',
    ''
  ].join('\n'))
  const docs = await kustomize(join(dir, 'my-cluster'))
  for (const d of docs) t.same(await k8sProblems(d), [], `${d.kind}/${d.metadata.name} is valid`)
  const dep = find(docs, 'DaemonSet')
  const pod = dep.spec.template.spec
  const c = pod.containers[0]
  const cm = docs.find(d => d.kind === 'ConfigMap' && d.metadata.name.startsWith('keystone-ca-'))
  t.ok(cm, 'generated ConfigMap with a content hash (pods roll when the CA changes)')
  t.equal(cm.data['ca.crt'], caPem)
  const vol = pod.volumes.find((v: any) => v.name === 'keystone-ca')
  t.equal(vol.configMap.name, cm.metadata.name, 'the volume follows the hashed name')
  const mount = c.volumeMounts.find((m: any) => m.name === 'keystone-ca')
  const env = c.env.find((e: any) => e.name === 'KEYSTONE_CA_FILE')
  t.equal(env.value, `${mount.mountPath}/ca.crt`, 'KEYSTONE_CA_FILE is the mounted key')
  t.ok(pod.volumes.some((v: any) => v.secret?.secretName === 'k8s-keystone-auth-tls'), 'the TLS volume is kept')
  t.ok(c.env.some((e: any) => e.name === 'TLS_CERT_FILE'), 'the other env vars are kept')
})

t.test('static-pod variant validates and keeps the same security settings', async t => {
  const [pod, ...rest] = yamlDocs(readFileSync(join(DEPLOY, 'static-pod/k8s-keystone-auth.yaml'), 'utf8'))
  t.equal(rest.length, 0)
  t.same(await k8sProblems(pod), [], 'Pod is valid')
  const c = pod.spec.containers[0]
  t.equal(pod.spec.hostNetwork, true)
  t.equal(pod.spec.automountServiceAccountToken, false, 'static pods have no ServiceAccount')
  t.match(c.securityContext, { readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } })
  t.equal(pod.spec.securityContext.runAsNonRoot, true)
  const dir = pod.spec.volumes.find((v: any) => v.hostPath !== undefined).hostPath.path
  for (const a of c.args.filter((x: string) => /-file=/.test(x))) t.ok(a.split('=')[1].startsWith(`${dir}/`), `${a} is on the read-only hostPath`)
  t.ok(c.volumeMounts.find((m: any) => m.mountPath === dir).readOnly)
  t.equal(c.livenessProbe.httpGet.path, '/healthz')
  t.equal(c.readinessProbe.httpGet.path, '/readyz')
  const listenPort = c.args.find((a: string) => a.startsWith('--listen=')).split(':').pop()
  t.equal(listenPort, new URL(DEFAULT_WEBHOOK_URL).port)
  t.equal(c.image.split(':').pop(), parseYaml(readFileSync(join(DEPLOY, 'kustomization.yaml'), 'utf8')).images[0].newTag, 'same image tag as the base')
})

t.test('every variant listens on 127.0.0.1 with hostNetwork and requires kube-apiserver\'s client certificate', async t => {
  const variants: Array<[string, any, string]> = []
  for (const components of [[], ['cert-manager'], ['service'], ['cert-manager', 'service'], ['metrics'], ['cert-manager', 'metrics']]) {
    const docs = components.length === 0 ? await kustomize(DEPLOY) : await overlay(components)
    for (const d of docs.filter(x => !String(x.apiVersion).startsWith('cert-manager.io/'))) t.same(await k8sProblems(d), [], `${components.join('+') || 'base'}: ${d.kind}/${d.metadata.name} is valid`)
    variants.push([`deploy/${components.length === 0 ? '' : ` + ${components.join(' + ')}`}`, find(docs, 'DaemonSet'), components.includes('service') ? '0.0.0.0' : '127.0.0.1'])
  }
  const [staticPod] = yamlDocs(readFileSync(join(DEPLOY, 'static-pod/k8s-keystone-auth.yaml'), 'utf8'))
  variants.push(['static pod', staticPod, '127.0.0.1'])
  for (const [name, obj, host] of variants) {
    const pod = obj.kind === 'DaemonSet' ? obj.spec.template.spec : obj.spec
    const c = pod.containers[0]
    t.equal(pod.hostNetwork, true, `${name}: hostNetwork`)
    t.notOk('ports' in c, `${name}: no ports (no host port: a surge pod can share the node)`)
    t.equal(flagValue(c, 'listen', ''), `${host}:8443`, `${name}: --listen=${host}:8443`)
    const ca = clientCaFileOf(obj)
    t.ok(ca.volume.secret !== undefined || ca.volume.hostPath !== undefined, `${name}: --client-ca-file ${ca.path} comes from a Secret or hostPath`)
    for (const probe of [c.livenessProbe, c.readinessProbe]) {
      t.match(probe.httpGet, { host: '127.0.0.1', scheme: 'HTTPS' }, `${name}: ${probe.httpGet.path} probed over HTTPS on 127.0.0.1`)
      t.ok(['/healthz', '/livez', '/readyz'].includes(probe.httpGet.path), `${name}: ${probe.httpGet.path} needs no client certificate`)
    }
  }
  // The optional Service: only with its component, and it reaches the pods.
  t.notOk((await kustomize(DEPLOY)).some(d => d.kind === 'Service'), 'no Service in the base')
  const withService = await overlay(['service'])
  const svc = find(withService, 'Service')
  const dep = find(withService, 'DaemonSet')
  t.ok(matches(svc.spec.selector, dep.spec.template.metadata.labels), 'the optional Service selects the pods')
  t.ok(svc.spec.ports.every((p: any) => `--listen=0.0.0.0:${p.targetPort}` === dep.spec.template.spec.containers[0].args[0]), 'and targets the --listen port')
  t.match(readFileSync(join(DEPLOY, 'service/service.yaml'), 'utf8'), /^# OPTIONAL/, 'marked optional in its first line')
})

t.test('metrics component: a second listener on the node for Prometheus, reviews stay on 127.0.0.1', async t => {
  const base = find(await kustomize(DEPLOY), 'DaemonSet')
  const docs = await overlay(['metrics'])
  for (const d of docs) t.same(await k8sProblems(d), [], `${d.kind}/${d.metadata.name} is valid`)
  const ds = find(docs, 'DaemonSet')
  const c = ds.spec.template.spec.containers[0]
  t.same(c.args.slice(0, base.spec.template.spec.containers[0].args.length), base.spec.template.spec.containers[0].args, 'the base args are kept (the component appends)')
  t.equal(flagValue(c, 'listen', ''), '127.0.0.1:8443', 'reviews still on the loopback')
  const metricsListen = flagValue(c, 'metrics-listen', '')
  t.equal(metricsListen, '0.0.0.0:8444')
  t.notOk('ports' in c, 'still no ports')
  const annotations = ds.spec.template.metadata.annotations
  t.match(annotations, { 'prometheus.io/scrape': 'true', 'prometheus.io/scheme': 'https', 'prometheus.io/port': metricsListen?.split(':').pop(), 'prometheus.io/path': '/metrics' })
  // The args are valid for the server (with the env the DaemonSet sets).
  const env = Object.fromEntries(c.env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]))
  const opts = serverOptionsFrom(parseFlags(SERVER_FLAGS, c.args, env))
  t.equal(opts['metrics-listen'], '0.0.0.0:8444')
  t.equal(opts['listen-reuse-port'], true, 'both listeners with SO_REUSEPORT (the default)')
  t.match(readFileSync(join(DEPLOY, 'metrics/kustomization.yaml'), 'utf8'), /^# OPTIONAL/, 'marked optional in its first line')
})
