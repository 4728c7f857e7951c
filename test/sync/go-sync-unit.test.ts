// Go's own unit tests of the sync config and role mappings, replayed against ours: every case of
// pkg/identity/keystone/sync_test.go (v1.32.1, commit 8045e160) with its sync_test.yaml, read from
// the verbatim copies in test/fixtures/go-v1.32.1/pkg/identity/keystone/ (see
// test/helpers/go-keystone-tests.ts). Go's newSyncConfigFromFile + validate() is our
// parseSyncConfig (which runs validate()'s checks while decoding); Go's Syncer.syncRoles is our
// applyRoleMappings.
import t from 'tap'
import { defaultSyncConfig, parseSyncConfig, type SyncConfig } from '../../src/config/sync-config.js'
import { warningsOf } from '../../src/config/warnings.js'
import { ConfigError } from '../../src/errors.js'
import { applyRoleMappings } from '../../src/authn/identity.js'
import { EXTRA_ROLES, type UserInfo } from '../../src/identity.js'
import {
  goFile, goKeystoneConstants, goSyncConfigFromFileCases, goSyncConfigValidationCases, goSyncRolesCases, type GoValue
} from '../helpers/go-keystone-tests.js'

const goText = goFile('sync_test.go')
const count = (re: RegExp): number => goText.match(re)?.length ?? 0

/** Go's syncConfig field names to ours. */
const FIELDS: Record<string, keyof SyncConfig> = {
  DataTypesToSync: 'dataTypesToSync',
  NamespaceFormat: 'namespaceFormat',
  ProjectBlackList: 'projectsBlacklist',
  ProjectNameBlackList: 'projectsNameBlacklist',
  RoleMaps: 'roleMappings'
}
const ROLE_MAP_FIELDS: Record<string, string> = { KeystoneRole: 'keystoneRole', Username: 'username', Groups: 'groups' }
/** Go's yaml tags of the syncConfig struct (pkg/identity/keystone/sync.go). */
const YAML_KEYS: Record<string, string> = { DataTypesToSync: 'data-types-to-sync', NamespaceFormat: 'namespace-format' }

/** `sc.RoleMaps[0].Groups[0]`, `len(sc.RoleMaps)` on our config; Go's zero value for an absent string. */
function evalOnOurs (expr: string, cfg: SyncConfig): GoValue {
  const len = /^len\((.*)\)$/.exec(expr)
  if (len !== null) return (evalOnOurs(len[1] as string, cfg) as unknown[]).length
  const parts = /^sc((?:\.\w+|\[\d+\])+)$/.exec(expr)?.[1]
  if (parts === undefined) throw new Error(`cannot evaluate ${expr}`)
  let v: unknown = cfg
  let inRoleMap = false
  for (const p of parts.match(/\.\w+|\[\d+\]/g) ?? []) {
    if (p.startsWith('[')) {
      v = (v as unknown[])[Number(p.slice(1, -1))]
      continue
    }
    const name = p.slice(1)
    const ours = inRoleMap ? ROLE_MAP_FIELDS[name] : FIELDS[name]
    if (ours === undefined) throw new Error(`no field ${name} in ${expr}`)
    if (name === 'RoleMaps') inRoleMap = true
    v = (v as Record<string, unknown>)[ours] ?? (name === 'Username' ? '' : undefined)
  }
  return v as GoValue
}

t.test('TestSyncConfigFromFile: sync_test.yaml reads as in Go', async t => {
  const { file, cases } = goSyncConfigFromFileCases()
  t.equal(file, 'sync_test.yaml')
  t.equal(cases.length, 10, 'all th.AssertEquals of TestSyncConfigFromFile were read')
  const cfg = parseSyncConfig(goFile(file), file)
  t.same(warningsOf(cfg), [], 'no warnings: Go\'s test file is a clean config')
  for (const c of cases) t.same(evalOnOurs(c.expr, cfg), c.want, `sync_test.go:${c.line} ${c.expr}`)
})

t.test('TestSyncConfigValidation: each config is refused or accepted as Go\'s validate() does, with Go\'s message', async t => {
  const cases = goSyncConfigValidationCases()
  t.equal(cases.length, count(/sc\.validate\(\)/g), 'one case per sc.validate() of the Go file')
  t.equal(cases.length, 5)
  t.equal(cases.filter(c => c.error !== null).length, count(/err\.Error\(\)/g), 'one refused config per err.Error() of the Go file')
  for (const c of cases) {
    const yaml = Object.entries(c.fields).map(([k, v]) => {
      const key = YAML_KEYS[k]
      if (key === undefined) throw new Error(`sync_test.go:${c.line}: no yaml key for ${k}`)
      return `${key}: ${JSON.stringify(v)}\n`
    }).join('')
    const what = `sync_test.go:${c.line} (${c.comment}): ${JSON.stringify(yaml)}`
    if (c.error === null) {
      const cfg = parseSyncConfig(yaml, 'sync.yaml')
      t.same({ ...cfg }, defaultSyncConfig(), `${what}: accepted, the defaults`)
      continue
    }
    try {
      parseSyncConfig(yaml, 'sync.yaml')
      t.fail(`${what}: accepted, Go refuses with "${c.error}"`)
    } catch (err) {
      t.ok(err instanceof ConfigError, `${what}: refused`)
      // Ours names the file, the key and the line around Go's text.
      t.ok((err as Error).message.includes(c.error), `${what}: the message holds Go's "${c.error}" (ours: "${(err as Error).message}")`)
    }
  }
})

t.test('TestSyncRoles, TestSyncRolesSkipNilConfig, TestSyncRolesSkipm: role mappings apply as Go\'s syncRoles', async t => {
  const cases = goSyncRolesCases()
  t.equal(cases.length, count(/^func TestSyncRoles\w*\(/gm), 'every TestSyncRoles* function was read')
  t.equal(cases.length, 3)
  t.equal(cases.reduce((n, c) => n + c.lines.length, 0), count(/userModified/g) - cases.length, 'every assertion on userModified was read')
  t.equal(goKeystoneConstants().Roles, EXTRA_ROLES, 'Go\'s Roles extra key is ours')
  for (const c of cases) {
    const where = `${c.name} (sync_test.go:${c.line}, assertions at ${c.lines.join(', ')})`
    // No sync config (Go: syncConfig nil) is our default: no role mappings.
    const mappings = c.config === 'file' ? parseSyncConfig(goFile(c.file as string), c.file as string).roleMappings : []
    const user: UserInfo = { username: c.user.Username, uid: c.user.UID, groups: c.user.Groups, extra: c.user.Extra }
    const before = structuredClone(user)
    const out = applyRoleMappings(user, mappings)
    t.same(user, before, `${where}: the input identity is not changed (Go changes it in place; ours may be a cached one)`)
    if (c.want.username !== undefined) t.equal(out.username, c.want.username, `${where}: username`)
    if (c.want.groups !== undefined) t.same(out.groups, c.want.groups, `${where}: groups`)
    if (c.want.unchanged === true) {
      // Go compares the pointers (syncRoles returns its argument, changed or not); the intent is
      // "no mappings, no change", which ours keeps by returning the very same record.
      t.equal(out, user, `${where}: the same identity back`)
      t.same(out, before, `${where}: unchanged`)
    }
    t.equal(out.uid, c.user.UID, `${where}: uid kept`)
    t.same(out.extra, c.user.Extra, `${where}: extras kept`)
  }
})
