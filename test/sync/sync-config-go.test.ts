// The sync config as the Go binary reads it: gopkg.in/yaml.v2 decoding into the syncConfig struct
// of pkg/identity/keystone/sync.go (v1.32.1), then syncConfig.validate(). What yaml.v2 lets through
// is accepted with a warning naming the line; what yaml.v2 or validate() refuses is refused (the
// start fails, or the ConfigMap edit is refused and the last good config kept). Each case below was
// checked against the Go v1.32.1 binary with --sync-config-file (accepted: it goes on to serve;
// refused: it exits 1).
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultSyncConfig, parseSyncConfig, type SyncConfig } from '../../src/config/sync-config.js'
import { warningsOf } from '../../src/config/warnings.js'
import { ConfigError } from '../../src/errors.js'
import { LiveConfig } from '../../src/kube/live-config.js'
import { configSource } from '../../src/kube/config-source.js'
import { memoryLogger } from '../helpers/fake-kube.js'
import { startWebhook } from '../helpers/webhook.js'

const ok = (text: string): { cfg: SyncConfig, warnings: readonly string[] } => {
  const cfg = parseSyncConfig(text, 'sync.yaml')
  return { cfg, warnings: warningsOf(cfg) }
}

t.test('accepted as yaml.v2 accepts it, with a warning naming the line', async t => {
  let r = ok('data-types-to-sync: [projects]\nnamespace_format: "%n-%i"\n')
  t.same(r.cfg.dataTypesToSync, ['projects'])
  t.equal(r.cfg.namespaceFormat, '%i', 'an unknown key (a typo) is ignored, as yaml.v2 ignores it')
  t.equal(r.warnings.length, 1)
  t.match(r.warnings[0], /^sync\.yaml: namespace_format: unknown key "namespace_format" ignored.* \(line 2\)$/)

  r = ok('role-mappings:\n  - keystone-role: 1\n    groups: [1, true, 0x10, "q"]\n    username: false\nnamespace-format: 123%i\n')
  t.same(r.cfg.roleMappings, [{ keystoneRole: '1', groups: ['1', 'true', '0x10', 'q'], username: 'false' }],
    'a number or boolean where a string is expected is its text, as yaml.v2 decodes a scalar into a string field')
  t.equal(r.cfg.namespaceFormat, '123%i')
  t.match(r.warnings, [
    /role-mappings\.0\.keystone-role: the number 1 is read as the string "1".* \(line 2\)$/,
    /role-mappings\.0\.groups\.0: the number 1 is read as the string "1".* \(line 3\)$/,
    /role-mappings\.0\.groups\.1: the boolean true is read as the string "true".* \(line 3\)$/,
    /role-mappings\.0\.groups\.2: the number 0x10 is read as the string "0x10".* \(line 3\)$/,
    /role-mappings\.0\.username: the boolean false is read as the string "false".* \(line 4\)$/
  ])
  t.equal(r.warnings.length, 5, 'namespace-format 123%i is a string already')

  r = ok('role-mappings:\n  - username: someone\n    groups: [g]\n  - ~\n  - keystone-role: admin\n    extra: x\n    groups: [admins]\n')
  t.same(r.cfg.roleMappings, [{ keystoneRole: 'admin', groups: ['admins'] }], 'Go never applies a mapping without keystone-role (syncRoles)')
  t.match(r.warnings, [
    /role-mappings\.0: role mapping without keystone-role ignored.* \(line 2\)$/,
    /role-mappings\.1: empty role mapping ignored \(line 4\)$/,
    /role-mappings\.2\.extra: unknown key "extra" ignored.* \(line 6\)$/
  ])

  r = ok('namespace-format: "%i"\nnamespace-format: "x-%i"\n')
  t.equal(r.cfg.namespaceFormat, 'x-%i', 'a repeated key: the last wins, as yaml.v2')
  t.match(r.warnings, [/namespace-format: key given more than once.* \(line 2\)$/])

  r = ok('---\ndata-types-to-sync: [projects]\n---\nfoo: [[[\n')
  t.same(r.cfg.dataTypesToSync, ['projects'], 'yaml.v2 reads only the first document')
  t.match(r.warnings, [/only the first YAML document is read/])

  r = ok('base: &b {namespace-format: "%n-%i"}\n<<: *b\nlist: &l [projects]\ndata-types-to-sync: *l\n')
  t.equal(r.cfg.namespaceFormat, '%n-%i', 'merge keys, as yaml.v2')
  t.same(r.cfg.dataTypesToSync, ['projects'], 'aliases')

  for (const text of ['', '# only a comment\n', 'namespace-format: ~\nrole-mappings:\n', 'namespace-format: ""']) {
    r = ok(text)
    t.same(r.cfg, defaultSyncConfig(), `${JSON.stringify(text)}: defaults`)
    t.same(r.warnings, [], 'no warning')
  }
  r = ok('data-types-to-sync: [projects, role_assignments]\nnamespace-format: "%n-%i"\nprojects-blacklist: [a]\nprojects-name-blacklist: [admin]\nrole-mappings:\n  - keystone-role: member\n    groups: [m]\n    username: u\n')
  t.same(r.warnings, [], 'a clean config has no warnings')
  t.same(r.cfg, { dataTypesToSync: ['projects', 'role_assignments'], namespaceFormat: '%n-%i', projectsBlacklist: ['a'], projectsNameBlacklist: ['admin'], roleMappings: [{ keystoneRole: 'member', groups: ['m'], username: 'u' }] })
})

t.test('refused as yaml.v2 or validate() refuses it: the message names the key and the line', async t => {
  const cases: Array<[string, RegExp]> = [
    // yaml.v2: "cannot unmarshal ..."
    ['data-types-to-sync: projects', /data-types-to-sync: expected a list, got the single value "projects" \(write \[projects\]\) \(line 1\)/],
    ['data-types-to-sync: {a: b}', /data-types-to-sync: expected a list, got a mapping \(line 1\)/],
    ['role-mappings: {a: b}', /role-mappings: expected a list of role mappings, got a mapping \(line 1\)/],
    ['role-mappings:\n  - keystone-role: a\n    groups: g', /role-mappings\.0\.groups: expected a list.* \(line 3\)/],
    ['role-mappings:\n  - keystone-role: a\n    groups: [{a: b}]', /role-mappings\.0\.groups\.0: expected a string, got a mapping \(line 3\)/],
    ['role-mappings:\n  - admin', /role-mappings\.0: expected a role mapping.* \(line 2\)/],
    ['namespace-format: [a]', /namespace-format: expected a string, got a list \(line 1\)/],
    ['projects-blacklist: [[a]]', /projects-blacklist\.0: expected a string, got a list \(line 1\)/],
    ['foo', /\(top level\): expected a mapping of sync config keys.* \(line 1\)/],
    ['- a', /\(top level\): expected a mapping of sync config keys, got a list \(line 1\)/],
    ['[a]: x', /expected a key, got a list/],
    ['x: *nope', /unknown anchor "nope" \(line 1\)/],
    ['a: &a {b: 1}\n<<: [*a, 5]', /merge key \(<<\) needs a mapping/],
    ['\ttab: x', /not valid YAML: .* \(line 1\)/],
    // validate()
    ['data-types-to-sync: [projectz]', /data-types-to-sync\.0: Unsupported data type to sync: projectz\. Available values: projects,role_assignments \(line 1\)/],
    ['data-types-to-sync: [projects, 1]', /data-types-to-sync\.1: Unsupported data type to sync: 1\. .* \(line 1\)/],
    ['data-types-to-sync: [~]', /data-types-to-sync\.0: Unsupported data type to sync: \. .* \(line 1\)/],
    ['namespace-format: 123', /namespace-format "123": format string should comprise a %i substring \(keystone project id\) \(line 1\)/],
    ['namespace-format: "%i/%n"', /namespace-format "%i\/%n": namespace name must consist of alphanumeric.* \(line 1\)/]
  ]
  for (const [text, want] of cases) {
    t.throws(() => parseSyncConfig(text, 'sync.yaml'), ConfigError, JSON.stringify(text))
    try { parseSyncConfig(text, 'sync.yaml') } catch (err) { t.match((err as Error).message, want, JSON.stringify(text)); t.match((err as Error).message, /^sync\.yaml: /) }
  }
})

t.test('ConfigMap edits: a lenient one is applied and its warnings logged and shown; a type error is refused, last good kept', async t => {
  const { logger, records } = await memoryLogger()
  const live = new LiveConfig<SyncConfig>({ configMap: 'kube-system/keystone-sync-policy', key: 'syncConfig', parse: parseSyncConfig, empty: defaultSyncConfig, logger })
  t.equal(live.update({ syncConfig: 'data-types-to-sync: [projects]\nnamespace-format: "%n-%i"\nextra-key: 1\n' }), true, 'applied')
  t.same(live.current.dataTypesToSync, ['projects'])
  t.equal(live.lastError, undefined)
  t.equal(live.warnings.length, 1)
  const warned = records.filter(r => r.level === 40 && /extra-key: unknown key.* \(line 3\)$/.test(r.msg))
  t.equal(warned.length, 1, 'the warning is logged, naming the line')
  t.match(warned[0], { configmap: 'kube-system/keystone-sync-policy', key: 'syncConfig', msg: /^ConfigMap kube-system\/keystone-sync-policy key syncConfig: extra-key: unknown key/ })

  const good = live.current
  t.equal(live.update({ syncConfig: 'data-types-to-sync: role_assignments\n' }), false, 'a type error is refused')
  t.equal(live.current, good, 'last good kept')
  t.match(live.lastError, /data-types-to-sync: expected a list.* \(line 1\)/)

  t.equal(live.update({ syncConfig: 'data-types-to-sync: [role_assignments]\n' }), true)
  t.same(live.warnings, [], 'a clean edit clears the warnings')
})

t.test('files: warnings are logged at start and kept in the detail; a type error stops the start', async t => {
  const d = mkdtempSync(join(tmpdir(), 'ksa-sync-go-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  const { logger, records } = await memoryLogger()
  writeFileSync(join(d, 'lenient.yaml'), 'namespace-format: "%n-%i"\nrole-mappings:\n  - username: x\n')
  const src = configSource({ what: 'sync config', file: join(d, 'lenient.yaml'), parse: parseSyncConfig, empty: defaultSyncConfig, logger })
  t.equal(src.current.namespaceFormat, '%n-%i')
  t.ok(records.some(r => r.level === 40 && /lenient\.yaml: role-mappings\.0: role mapping without keystone-role ignored.* \(line 3\)/.test(r.msg)), 'logged')
  t.match(src.detail, /in effect with 1 warning: .*line 3/)

  // The whole server, as an operator starts it.
  writeFileSync(join(d, 'sync.yaml'), 'namespace-format: "%n-%i"\nnamespace_format: typo\n')
  const wh = await startWebhook(['--sync-config-file', join(d, 'sync.yaml')])
  t.teardown(wh.close)
  t.ok(wh.logs.some(l => /"level":40/.test(l) && /namespace_format: unknown key.* \(line 2\)/.test(l)), 'the server starts and warns')
  writeFileSync(join(d, 'broken.yaml'), 'namespace-format: "%n-%i"\nprojects-blacklist: some-id\n')
  await t.rejects(startWebhook(['--sync-config-file', join(d, 'broken.yaml')]), /broken\.yaml: projects-blacklist: expected a list.* \(line 2\)/, 'refused start')
})
