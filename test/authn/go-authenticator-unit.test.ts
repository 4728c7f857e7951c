// Go's own unit test of TokenReview identities, replayed against ours without a network: every
// case of pkg/identity/keystone/authenticator_test.go (v1.32.1, commit 8045e160), read from the
// verbatim copy in test/fixtures/go-v1.32.1/pkg/identity/keystone/ (see
// test/helpers/go-keystone-tests.ts). Go mocks IKeystone (GetTokenInfo, GetGroups); here the same
// answers come from a stand-in KeystoneClient (validateToken, listUserGroups), through our
// Authenticator and directly through identityFrom.
//
// Go's expected Groups is ["group1", "group2"], yet AuthenticateToken appends the project id
// (authenticator.go:141, `userGroups = append(userGroups, tokenInfo.projectID)`), and the test
// passes because gophercloud's th.AssertDeepEquals (testhelper/convenience.go, deepDiffEqual, v2.5.0)
// compares a slice only up to the length of the expected one. What the Go binary answers, and what
// we must answer, is the expected groups then the project id; maps are compared on the larger key
// set, so the five extras are exactly Go's.
import t from 'tap'
import pino from 'pino'
import { Authenticator } from '../../src/authn/authenticator.js'
import { identityFrom } from '../../src/authn/identity.js'
import { EXTRA_PROJECT_ID, EXTRA_PROJECT_NAME, EXTRA_ROLES, EXTRA_USER_DOMAIN_ID, EXTRA_USER_DOMAIN_NAME } from '../../src/identity.js'
import type { KeystoneClient } from '../../src/keystone/client.js'
import type { Group, TokenInfo } from '../../src/keystone/types.js'
import { goAuthenticateCases, goFile, goKeystoneConstants, type GoAuthenticateCase } from '../helpers/go-keystone-tests.js'

const cases = goAuthenticateCases()

/** Go's tokenInfo as ours: the domain is the user's (authenticator.go: tokenUser.Domain). */
function tokenInfoOf (c: GoAuthenticateCase): TokenInfo {
  const ti = c.tokenInfo
  const domain = { id: ti.domainID, name: ti.domainName }
  return {
    user: { id: ti.userID, name: ti.userName },
    userDomain: domain,
    scope: { kind: 'project', project: { id: ti.projectID, name: ti.projectName }, domain },
    roles: ti.roles.map(name => ({ id: `id-of-${name}`, name })),
    methods: ['password'],
    expiresAt: new Date(Date.now() + 3600_000)
  }
}

const groupsOf = (c: GoAuthenticateCase): Group[] => c.groups.map(name => ({ id: `id-of-${name}`, name }))

/** What the Go binary answers: Go's expected user with the project id appended to the groups. */
function goAnswer (c: GoAuthenticateCase): { username: string, uid: string, groups: string[], extra: Record<string, string[]> } {
  return { username: c.expected.Name, uid: c.expected.UID, groups: [...c.expected.Groups, c.tokenInfo.projectID], extra: c.expected.Extra }
}

t.test('the Go file: every test function read, the constants are ours', async t => {
  const text = goFile('authenticator_test.go')
  t.equal(cases.length, text.match(/^func Test\w+\(/gm)?.length, 'one case per test function')
  t.equal(cases.length, 1)
  t.equal(cases.length, text.match(/expectedUserInfo := /g)?.length, 'one expected user per case')
  const go = goKeystoneConstants()
  t.same(
    { Roles: go.Roles, ProjectID: go.ProjectID, ProjectName: go.ProjectName, DomainID: go.DomainID, DomainName: go.DomainName },
    { Roles: EXTRA_ROLES, ProjectID: EXTRA_PROJECT_ID, ProjectName: EXTRA_PROJECT_NAME, DomainID: EXTRA_USER_DOMAIN_ID, DomainName: EXTRA_USER_DOMAIN_NAME },
    'the extra keys of keystone.go are ours'
  )
  t.match(goFile('authenticator.go'), /\n\tuserGroups = append\(userGroups, tokenInfo\.projectID\)\n/, 'Go appends the project id to the groups')
})

t.test('TestAuthenticateToken: identityFrom builds Go\'s user', async t => {
  for (const c of cases) {
    const where = `authenticator_test.go:${c.line} (expected at line ${c.expectedLine})`
    const ours = identityFrom(tokenInfoOf(c), groupsOf(c), 'name')
    t.same(ours, goAnswer(c), where)
    // What Go's th.AssertDeepEquals checks of it (the groups as a prefix):
    t.same(ours.groups.slice(0, c.expected.Groups.length), c.expected.Groups, `${where}: Go's expected groups come first`)
    t.same(Object.keys(ours.extra).sort(), Object.keys(c.expected.Extra).sort(), `${where}: exactly Go's five extras`)
  }
})

t.test('TestAuthenticateToken: through our Authenticator, Keystone answering as Go\'s mock', async t => {
  for (const c of cases) {
    const where = `authenticator_test.go:${c.line}`
    const calls: string[] = []
    const keystone = {
      validateToken: async (subject: string, auth: string = subject): Promise<TokenInfo | null> => {
        calls.push(`GetTokenInfo ${subject} ${auth}`)
        return subject === c.token ? tokenInfoOf(c) : null
      },
      listUserGroups: async (userId: string, auth: string): Promise<Group[]> => {
        calls.push(`GetGroups ${auth} ${userId}`)
        return groupsOf(c)
      }
    } as unknown as KeystoneClient
    const authn = new Authenticator({ keystone, logger: pino({ level: 'silent' }) })
    const res = await authn.authenticate(c.token)
    t.equal(res.authenticated, c.allowed, `${where}: allowed`)
    if (res.authenticated) t.same({ ...res.user }, goAnswer(c), `${where}: the user`)
    // keystone.AssertExpectations with .Once(): each mocked call made, once, with the mock's arguments.
    t.same(calls, [`GetTokenInfo ${c.token} ${c.token}`, `GetGroups ${c.groupsFor.token} ${c.groupsFor.userID}`], `${where}: Keystone asked as Go's mock expects`)
  }
})
