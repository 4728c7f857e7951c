import t from 'tap'
import fc from 'fast-check'
import { isDns1123Label, namespaceName, toDns1123Label } from '../../src/sync/namespace-name.js'
import { roleBindingName, isSyncedBindingOf } from '../../src/sync/rolebinding-name.js'

const ID = '379e99071fad45709896fb197a6e485c'

t.test('Go rules: %i, %n, %d replaced; over 63 bytes -> project id', async t => {
  t.equal(namespaceName('%i', ID, 'demo', 'default'), ID)
  t.equal(namespaceName('%n-%i', ID, 'demo', 'default'), `demo-${ID}`)
  t.equal(namespaceName('%d-%n-%i', ID, 'demo', 'default'), `default-demo-${ID}`)
  t.equal(namespaceName('%n-%n-%i', ID, 'x', 'd'), `x-x-${ID}`, 'every occurrence')
  const long = 'a'.repeat(30)
  t.equal(namespaceName('%n-%i', ID, long, 'd'), `${long}-${ID}`, '63 characters is still allowed')
  t.equal(namespaceName('%n-%i', ID, long + 'b', 'd'), ID, '64 -> the id alone')
  t.equal(namespaceName('%n-%i', ID, 'é'.repeat(16), 'd'), ID, 'length counted in bytes, as Go')
})

t.test('our difference: the name is made a DNS-1123 label', async t => {
  t.equal(namespaceName('%n-%i', ID, 'My_Project', 'd'), `my-project-${ID}`)
  t.equal(namespaceName('%n.%i', ID, 'demo', 'd'), `demo-${ID}`, '. is not valid in a label')
  t.equal(namespaceName('%n_%i', ID, '_x_', 'd'), `-x--${ID}`.replace(/^-/, ''), 'leading - trimmed')
  t.equal(namespaceName('%i-%n', ID, 'Ünïcode!', 'd'), `${ID}--n-code`, 'non-ASCII and punctuation map to -, trailing - trimmed')
  t.equal(namespaceName('%i', 'ABC_def', '', ''), 'abc-def', 'ids are sanitised too')
  t.equal(namespaceName('%i', '___', '', ''), '', 'nothing usable left -> empty (the syncer skips)')
  t.equal(toDns1123Label('x'.repeat(70)), 'x'.repeat(63))
})

t.test('property: always a valid DNS-1123 label (or empty), valid Go names unchanged', async t => {
  fc.assert(fc.property(fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }), fc.string({ maxLength: 40 }),
    fc.constantFrom('%i', '%n-%i', '%d-%n-%i', '%i.%n', 'ns_%i'), (id, name, domain, fmt) => {
      const ns = namespaceName(fmt, id, name, domain)
      return ns === '' || isDns1123Label(ns)
    }))
  fc.assert(fc.property(fc.stringMatching(/^[a-z0-9]{1,20}$/), fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,18}[a-z0-9])?$/), (id, name) => {
    return namespaceName('%n-%i', id, name, 'd') === `${name}-${id}`
  }))
})

t.test('RoleBinding names: <user id>_<role> as Go; / and % (invalid path segment) replaced', async t => {
  t.equal(roleBindingName('u1', 'member'), 'u1_member')
  t.equal(roleBindingName('u1', 'Load_Balancer_Member'), 'u1_Load_Balancer_Member', 'kept as Go: RBAC names are path segments')
  t.equal(roleBindingName('u1', 'a/b%c'), 'u1_a-b-c')
  t.ok(isSyncedBindingOf('u1', 'u1_member', 'member'))
  t.ok(isSyncedBindingOf('u1', 'u1_a-b-c', 'a/b%c'))
  t.notOk(isSyncedBindingOf('u1', 'u10_member', 'member'))
  t.notOk(isSyncedBindingOf('u1', 'admin-binding', 'member'))
  t.notOk(isSyncedBindingOf('u1', 'u1_x_member', 'member'), 'user u1_x\'s binding of member is not u1\'s')
  t.notOk(isSyncedBindingOf('u1', 'u1_member', 'view'), 'a name like ours bound to another role is not ours')
})
