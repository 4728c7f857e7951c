// Offline validation of Kubernetes objects against the Kubernetes OpenAPI schemas compiled into
// the `kubernetes-models` package, made strict about field names: its validators accept unknown
// fields (as the OpenAPI schemas do), but kube-apiserver with `kubectl apply --validate=strict`
// (the default since 1.25) refuses them, and a typo such as `readOnlyRootFileSystem` would
// otherwise pass silently. The compiled validators read every known property of an object
// (`data.allowPrivilegeEscalation`, ...) and enumerate the keys of maps (labels, data); a Proxy
// records those reads, and any key of a typed object that the validator never read is unknown.
// Objects the validator neither reads nor enumerates are free-form (e.g. RawExtension) and skipped.

type ValidateFn = ((data: unknown) => boolean) & { errors?: Array<{ instancePath: string, message?: string, keyword: string, params?: unknown }> | null }

const SCHEMAS: Record<string, string> = {
  'v1/ConfigMap': 'IoK8sApiCoreV1ConfigMap',
  'v1/Pod': 'IoK8sApiCoreV1Pod',
  'v1/Secret': 'IoK8sApiCoreV1Secret',
  'v1/Service': 'IoK8sApiCoreV1Service',
  'v1/ServiceAccount': 'IoK8sApiCoreV1ServiceAccount',
  'apps/v1/DaemonSet': 'IoK8sApiAppsV1DaemonSet',
  'apps/v1/Deployment': 'IoK8sApiAppsV1Deployment',
  'policy/v1/PodDisruptionBudget': 'IoK8sApiPolicyV1PodDisruptionBudget',
  'rbac.authorization.k8s.io/v1/Role': 'IoK8sApiRbacV1Role',
  'rbac.authorization.k8s.io/v1/RoleBinding': 'IoK8sApiRbacV1RoleBinding',
  'rbac.authorization.k8s.io/v1/ClusterRole': 'IoK8sApiRbacV1ClusterRole',
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': 'IoK8sApiRbacV1ClusterRoleBinding'
}

const loaded = new Map<string, ValidateFn>()

async function validatorFor (apiVersion: string, kind: string): Promise<ValidateFn | undefined> {
  const name = SCHEMAS[`${apiVersion}/${kind}`]
  if (name === undefined) return undefined
  let fn = loaded.get(name)
  if (fn === undefined) {
    // kubernetes-models 4 (the last line that supports Node 20) exports no _schemas/ subpath:
    // the compiled validators are loaded by file, from the package's own directory
    const mod = await import(new URL(`../../node_modules/kubernetes-models/_schemas/${name}.mjs`, import.meta.url).href) as { validate: ValidateFn }
    fn = mod.validate
    loaded.set(name, fn)
  }
  return fn
}

interface Track { path: string, read: Set<string>, enumerated: boolean }

function tracked (root: unknown): { proxy: unknown, tracks: Map<object, Track> } {
  const tracks = new Map<object, Track>()
  const proxies = new WeakMap<object, unknown>()
  const wrap = (value: unknown, path: string): unknown => {
    if (value === null || typeof value !== 'object') return value
    const existing = proxies.get(value)
    if (existing !== undefined) return existing
    const tr: Track = { path, read: new Set(), enumerated: false }
    tracks.set(value, tr)
    const proxy = new Proxy(value, {
      get (target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver)
        if (typeof prop !== 'string') return v
        tr.read.add(prop)
        return Object.prototype.hasOwnProperty.call(target, prop) ? wrap(v, `${path}/${prop}`) : v
      },
      has (target, prop) {
        if (typeof prop === 'string') tr.read.add(prop)
        return Reflect.has(target, prop)
      },
      ownKeys (target) {
        tr.enumerated = true
        return Reflect.ownKeys(target)
      }
    })
    proxies.set(value, proxy)
    return proxy
  }
  return { proxy: wrap(root, ''), tracks }
}

/**
 * Problems of one object against its Kubernetes schema (type errors, missing required fields,
 * bad enums, unknown fields), as "path message" strings; [] when valid. Throws for a kind that
 * has no schema here, so that nothing goes unvalidated by accident.
 */
export async function k8sProblems (obj: any): Promise<string[]> {
  const fn = await validatorFor(String(obj?.apiVersion), String(obj?.kind))
  if (fn === undefined) throw new Error(`no schema for ${String(obj?.apiVersion)} ${String(obj?.kind)}`)
  const { proxy, tracks } = tracked(obj)
  if (!fn(proxy)) {
    return (fn.errors ?? []).map(e => `${e.instancePath === '' ? '/' : e.instancePath} ${e.message ?? e.keyword} ${JSON.stringify(e.params ?? {})}`)
  }
  const problems: string[] = []
  for (const [value, tr] of tracks) {
    if (Array.isArray(value) || tr.enumerated || tr.read.size === 0) continue
    for (const key of Object.keys(value)) {
      if (!tr.read.has(key)) problems.push(`${tr.path === '' ? '/' : tr.path} unknown field "${key}"`)
    }
  }
  return problems
}

export const schemaKinds = (): string[] => Object.keys(SCHEMAS)
