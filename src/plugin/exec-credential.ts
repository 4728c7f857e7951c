import { UsageError } from '../errors.js'

// The client.authentication.k8s.io ExecCredential exchange with kubectl. kubectl passes
// KUBERNETES_EXEC_INFO (an ExecCredential with spec.interactive) to plugins; we answer in the same
// apiVersion. Without it (run by hand, or by old clients) the answer is v1beta1, as the Go plugin's.

export const EXEC_API_VERSIONS = ['client.authentication.k8s.io/v1', 'client.authentication.k8s.io/v1beta1'] as const
export type ExecApiVersion = typeof EXEC_API_VERSIONS[number]

export interface ExecInfo {
  apiVersion: ExecApiVersion
  /** spec.interactive, or undefined when kubectl did not say. */
  interactive: boolean | undefined
}

export function readExecInfo (env: NodeJS.ProcessEnv): ExecInfo {
  const raw = env.KUBERNETES_EXEC_INFO
  if (raw === undefined || raw.trim() === '') return { apiVersion: 'client.authentication.k8s.io/v1beta1', interactive: undefined }
  let doc: unknown
  try {
    doc = JSON.parse(raw)
  } catch {
    throw new UsageError('KUBERNETES_EXEC_INFO is not JSON')
  }
  const d = doc as { apiVersion?: unknown, kind?: unknown, spec?: { interactive?: unknown } }
  if (typeof d !== 'object' || d === null || !EXEC_API_VERSIONS.includes(d.apiVersion as ExecApiVersion)) {
    throw new UsageError(`KUBERNETES_EXEC_INFO asks for apiVersion ${JSON.stringify(d?.apiVersion)}; this plugin speaks ${EXEC_API_VERSIONS.join(' and ')}`)
  }
  const interactive = typeof d.spec?.interactive === 'boolean' ? d.spec.interactive : undefined
  return { apiVersion: d.apiVersion as ExecApiVersion, interactive }
}

/** RFC 3339 in UTC with second precision, as client-go formats metav1.Time. */
export function rfc3339 (d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

export function execCredential (apiVersion: ExecApiVersion, token: string, expiresAt: Date): string {
  return JSON.stringify({
    apiVersion,
    kind: 'ExecCredential',
    status: { token, expirationTimestamp: rfc3339(expiresAt) }
  }) + '\n'
}
