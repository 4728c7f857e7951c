// Go's own authorization cases and policy examples, read from verbatim copies of the Go files
// (kubernetes/cloud-provider-openstack v1.32.1, commit 8045e16064e73d9ee965ecedd40490cba640720e)
// in test/fixtures/go-v1.32.1/ (laid out as in the Go repository), so that no case is retyped,
// dropped or misread by hand:
//  - pkg/identity/keystone/authorizer_test.go with its two policy files: every
//    `authorizer.AttributesRecord{...}` followed by its `th.AssertEquals(t, authorizer.DecisionX, ...)`;
//  - docs/keystone-auth/using-keystone-webhook-authenticator-and-authorizer.md: every policy in a
//    ConfigMap heredoc, and every v2 `"resource_permissions": {...}` fragment of its examples list;
//  - examples/webhook/policy.json and examples/webhook/keystone-policy-configmap.yaml (also the
//    v1 policy that file carries in comments).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES } from '../../src/identity.js'
import type { AccessRequest } from '../../src/authz/types.js'
import { here } from './helpers.js'

/** The verbatim Go files, under their paths in the Go repository. */
export const GO_REPO = join(here, '..', 'fixtures', 'go-v1.32.1')
/** Where authorizer_test.go and its policy files are. */
export const GO_FIXTURES = join(GO_REPO, 'pkg', 'identity', 'keystone')

function read (name: string): string {
  return readFileSync(join(GO_REPO, name), 'utf8')
}

/** A user as Go's tests build it; `extra` undefined is Go's nil map (no `spec.extra` on the wire). */
export interface GoUser {
  name: string
  groups: string[]
  extra?: Record<string, string[]>
}

export interface GoCase {
  /** The Go test function and the line of the AttributesRecord in authorizer_test.go. */
  where: string
  policyFile: string
  user: GoUser
  request: Omit<AccessRequest, 'user' | 'groups' | 'extra'>
  allowed: boolean
}

const EXTRA_CONSTANTS: Record<string, string> = { ProjectName: EXTRA_PROJECT_NAME, ProjectID: EXTRA_PROJECT_ID, Roles: EXTRA_ROLES }

function goStrings (text: string): string[] {
  return [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map(m => JSON.parse(`"${m[1] as string}"`) as string)
}

function parseUsers (body: string): Map<string, GoUser> {
  const users = new Map<string, GoUser>()
  for (const m of body.matchAll(/(\w+) := &user\.DefaultInfo\{([\s\S]*?)\n\t\}/g)) {
    const fields = m[2] as string
    const name = /Name:\s*"([^"]*)"/.exec(fields)?.[1]
    if (name === undefined) throw new Error(`user ${m[1] as string}: no Name`)
    const groups = goStrings(/Groups:\s*\[\]string\{([^}]*)\}/.exec(fields)?.[1] ?? '')
    const user: GoUser = { name, groups }
    const extraBlock = /Extra:\s*map\[string\]\[\]string\{([\s\S]*?)\n\t\t\}/.exec(fields)?.[1]
    if (extraBlock !== undefined) {
      user.extra = {}
      for (const e of extraBlock.matchAll(/(\w+):\s*\{([^}]*)\}/g)) {
        const key = EXTRA_CONSTANTS[e[1] as string]
        if (key === undefined) throw new Error(`user ${name}: unknown extra constant ${e[1] as string}`)
        user.extra[key] = goStrings(e[2] as string)
      }
    }
    users.set(m[1] as string, user)
  }
  return users
}

function field (record: string, name: string): string {
  const m = new RegExp(`\\b${name}:\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(record)
  return m === null ? '' : JSON.parse(`"${m[1] as string}"`) as string
}

/** Every case of TestAuthorizer and TestAuthorizerVersion2, in file order. */
export function goAuthorizerCases (): GoCase[] {
  const text = read('pkg/identity/keystone/authorizer_test.go')
  const cases: GoCase[] = []
  const functions = [...text.matchAll(/^func (Test\w+)\(t \*testing\.T\) \{$/gm)]
  functions.forEach((fn, i) => {
    const start = fn.index
    const end = functions[i + 1]?.index ?? text.length
    const body = text.slice(start, end)
    const policyFile = /path \+= "\/([^"]+)"/.exec(body)?.[1]
    if (policyFile === undefined) throw new Error(`${fn[1] as string}: no policy file`)
    const users = parseUsers(body)
    for (const m of body.matchAll(/authorizer\.AttributesRecord\{([\s\S]*?)\}\n[\s\S]*?th\.AssertEquals\(t, authorizer\.Decision(Allow|Deny), decision\)/g)) {
      const record = m[1] as string
      const userVar = /User:\s*(\w+)/.exec(record)?.[1] as string
      const user = users.get(userVar)
      if (user === undefined) throw new Error(`${fn[1] as string}: unknown user ${userVar}`)
      const line = text.slice(0, start + (m.index)).split('\n').length
      const isResource = /ResourceRequest:\s*true/.test(record)
      const request: GoCase['request'] = isResource
        ? { resource: { namespace: field(record, 'Namespace'), verb: field(record, 'Verb'), group: field(record, 'APIGroup'), version: field(record, 'APIVersion'), resource: field(record, 'Resource'), subresource: field(record, 'Subresource'), name: field(record, 'Name') } }
        : { nonResource: { path: field(record, 'Path'), verb: field(record, 'Verb') } }
      cases.push({ where: `${fn[1] as string}, authorizer_test.go:${line}`, policyFile, user, request, allowed: m[2] === 'Allow' })
    }
  })
  return cases
}

export interface GoDocPolicy {
  name: string
  /** The Go file (and line) it comes from. */
  source: string
  policy: unknown[]
}

// The v2 examples in the doc are fragments of an entry; they are tried inside this one.
const DOC_FRAGMENT_USERS = { projects: ['demo'], roles: ['member'] }

/** The first JSON list in `text`, by bracket count (the policies hold no brackets in strings). */
function balancedList (text: string): string | undefined {
  const start = text.indexOf('[')
  if (start < 0) return undefined
  let depth = 0
  for (let i = start; i < text.length; i++) {
    if (text[i] === '[') depth++
    else if (text[i] === ']' && --depth === 0) return text.slice(start, i + 1)
  }
  return undefined
}

function lineOf (text: string, index: number): number {
  return text.slice(0, index).split('\n').length
}

/** Every authorization policy of Go's docs and examples/webhook. */
export function goDocPolicies (): GoDocPolicy[] {
  const out: GoDocPolicy[] = []
  const doc = 'using-keystone-webhook-authenticator-and-authorizer.md'
  const md = read(`docs/keystone-auth/${doc}`)
  for (const m of md.matchAll(/<<EOF[^\n]*\n([\s\S]*?)\nEOF/g)) {
    const manifest = parseYaml(m[1] as string) as { kind?: string, data?: { policies?: string } }
    if (manifest?.kind !== 'ConfigMap' || manifest.data?.policies === undefined) continue
    out.push({ name: `doc ConfigMap at line ${lineOf(md, m.index)}`, source: `docs/keystone-auth/${doc}:${lineOf(md, m.index)}`, policy: JSON.parse(manifest.data.policies) })
  }
  for (const m of md.matchAll(/```json\n\s*("resource_permissions": \{[\s\S]*?\})\n\s*```/g)) {
    const fragment = JSON.parse(`{${m[1] as string}}`) as Record<string, unknown>
    out.push({ name: `doc v2 example ${Object.keys(fragment.resource_permissions as object).join(', ')}`, source: `docs/keystone-auth/${doc}:${lineOf(md, m.index)} (inside users ${JSON.stringify(DOC_FRAGMENT_USERS)})`, policy: [{ users: DOC_FRAGMENT_USERS, ...fragment }] })
  }
  out.push({ name: 'examples/webhook/policy.json', source: 'examples/webhook/policy.json', policy: JSON.parse(read('examples/webhook/policy.json')) })
  const cmText = read('examples/webhook/keystone-policy-configmap.yaml')
  const cm = parseYaml(cmText) as { data: { policies: string } }
  out.push({ name: 'examples/webhook/keystone-policy-configmap.yaml (v2)', source: 'examples/webhook/keystone-policy-configmap.yaml', policy: JSON.parse(cm.data.policies) })
  const commented = cmText.split('\n').filter(l => l.startsWith('#')).map(l => l.replace(/^# ?/, '')).join('\n')
  const v1 = balancedList(commented.slice(commented.indexOf('policies: |')))
  if (v1 !== undefined) out.push({ name: 'examples/webhook/keystone-policy-configmap.yaml (v1, in comments)', source: 'examples/webhook/keystone-policy-configmap.yaml (commented out)', policy: JSON.parse(v1) })
  return out
}
