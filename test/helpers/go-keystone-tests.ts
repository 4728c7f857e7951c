// Go's own unit tests of pkg/identity/keystone (kubernetes/cloud-provider-openstack v1.32.1,
// commit 8045e16064e73d9ee965ecedd40490cba640720e), read from verbatim copies in
// test/fixtures/go-v1.32.1/pkg/identity/keystone/ so that no case is retyped, dropped or misread
// by hand: sync_test.go (+ sync_test.yaml), authenticator_test.go and keystone_test.go. The Go
// constants they use (Roles, ProjectID, ..., allowedDataTypesToSync) are read from the verbatim
// keystone.go and sync.go beside them, not from our code.
//
// This is not a Go parser: it reads the statement shapes these files use (each reader throws on
// one it does not know), and every test that uses it checks the case count against a grep.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const GO_KEYSTONE_DIR = fileURLToPath(new URL('../fixtures/go-v1.32.1/pkg/identity/keystone/', import.meta.url))

export function goFile (name: string): string {
  return readFileSync(GO_KEYSTONE_DIR + name, 'utf8')
}

/** A Go statement of a function body, with the line (in the file) it starts on. */
export interface GoStatement { text: string, line: number }

export interface GoFunction { name: string, line: number, statements: GoStatement[] }

/** Brackets outside string literals and comments: how far `text` opens (positive) or closes. */
function depthOf (text: string): number {
  let depth = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"' || c === '`') {
      const end = c === '"' ? /"/g : /`/g
      if (c === '"') {
        i++
        while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
      } else {
        end.lastIndex = i + 1
        const m = end.exec(text)
        i = m === null ? text.length : m.index
      }
    } else if (c === '/' && text[i + 1] === '/') {
      break
    } else if (c === '(' || c === '{' || c === '[') depth++
    else if (c === ')' || c === '}' || c === ']') depth--
  }
  return depth
}

/** Every top-level `func TestX(t *testing.T)` of a Go file, its body split into statements. */
export function goTestFunctions (file: string): Map<string, GoFunction> {
  const lines = goFile(file).split('\n')
  const out = new Map<string, GoFunction>()
  for (let i = 0; i < lines.length; i++) {
    const head = /^func (Test\w+)\(t \*testing\.T\) \{$/.exec(lines[i] as string)
    if (head === null) continue
    const fn: GoFunction = { name: head[1] as string, line: i + 1, statements: [] }
    let current: GoStatement | undefined
    let depth = 0
    for (i++; i < lines.length && lines[i] !== '}'; i++) {
      const line = (lines[i] as string).trim()
      if (current === undefined) {
        if (line === '' || line.startsWith('//')) continue
        current = { text: line, line: i + 1 }
      } else {
        current.text += '\n' + line
      }
      depth += depthOf(line)
      // A statement ends where its brackets close, unless the line ends a method chain (`x.`).
      if (depth === 0 && !line.endsWith('.')) {
        fn.statements.push(current)
        current = undefined
      }
    }
    out.set(fn.name, fn)
  }
  return out
}

/** Splits `a, f(b, c), "d,e"` at its top-level commas. */
export function splitArgs (text: string): string[] {
  const out: string[] = []
  let depth = 0
  let start = 0
  for (let i = 0; i < text.length; i++) {
    const c = text[i]
    if (c === '"') {
      i++
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    } else if (c === '(' || c === '{' || c === '[') depth++
    else if (c === ')' || c === '}' || c === ']') depth--
    else if (c === ',' && depth === 0) {
      out.push(text.slice(start, i).trim())
      start = i + 1
    }
  }
  const last = text.slice(start).trim()
  if (last !== '') out.push(last)
  return out
}

/** The arguments of the call `name(...)` that `text` is (or starts with). */
export function callArgs (text: string, name: string): string[] | undefined {
  if (!text.startsWith(name + '(')) return undefined
  let depth = 0
  for (let i = name.length; i < text.length; i++) {
    const c = text[i]
    if (c === '"') {
      i++
      while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1
    } else if (c === '(') depth++
    else if (c === ')' && --depth === 0) return splitArgs(text.slice(name.length + 1, i))
  }
  return undefined
}

export type GoValue = string | number | boolean | null | GoValue[] | { [key: string]: GoValue }

/** The body of a composite literal `<type>{...}` (the outer braces removed). */
function literalBody (text: string, type: string): string | undefined {
  const t = text.trim()
  if (!t.startsWith(type + '{') || !t.endsWith('}')) return undefined
  return t.slice(type.length + 1, -1)
}

/**
 * Evaluates the Go expressions these tests use: string, int and bool literals, nil, variables and
 * constants from `vars`, `[]string{...}`, `map[string][]string{K: v}` (K a variable), struct
 * literals `&T{F: v}` (as records), strings.Join and fmt.Sprintf with %v.
 */
export function goEval (expr: string, vars: Record<string, GoValue>): GoValue {
  const e = expr.trim()
  if (/^"(?:[^"\\]|\\.)*"$/.test(e)) return JSON.parse(e) as string
  if (/^-?\d+$/.test(e)) return Number(e)
  if (e === 'true' || e === 'false') return e === 'true'
  if (e === 'nil') return null
  if (/^\w+$/.test(e)) {
    if (!Object.hasOwn(vars, e)) throw new Error(`Go: unknown name ${e}`)
    return vars[e] as GoValue
  }
  const list = literalBody(e, '[]string') ?? literalBody(e, '[]*roleMap')
  if (list !== undefined) return splitArgs(list).map(x => goEval(x, vars))
  const map = literalBody(e, 'map[string][]string')
  if (map !== undefined) {
    const out: Record<string, GoValue> = {}
    for (const kv of splitArgs(map)) {
      const m = /^(\w+|"[^"]*"):\s*([\s\S]+)$/.exec(kv)
      if (m === null) throw new Error(`Go: map entry ${kv}`)
      const key = goEval(m[1] as string, vars)
      const value = (m[2] as string).trim()
      // `Roles: {"a", "b"}`: the element type is elided inside a map literal.
      out[key as string] = value.startsWith('{') ? goEval(`[]string${value}`, vars) : goEval(value, vars)
    }
    return out
  }
  const struct = /^&?([\w.]+)\{([\s\S]*)\}$/.exec(e)
  if (struct !== null) {
    const out: Record<string, GoValue> = {}
    for (const kv of splitArgs(struct[2] as string)) {
      const m = /^(\w+):\s*([\s\S]+)$/.exec(kv)
      if (m === null) throw new Error(`Go: ${struct[1] as string} field ${kv}`)
      out[m[1] as string] = goEval(m[2] as string, vars)
    }
    return out
  }
  const join = callArgs(e, 'strings.Join')
  if (join !== undefined) {
    const [items, sep] = join.map(x => goEval(x, vars))
    return (items as string[]).join(sep as string)
  }
  const sprintf = callArgs(e, 'fmt.Sprintf')
  if (sprintf !== undefined) {
    const [format, ...args] = sprintf.map(x => goEval(x, vars))
    let k = 0
    return (format as string).replace(/%v/g, () => String(args[k++]))
  }
  throw new Error(`Go: cannot evaluate ${e}`)
}

/** The string constants of every `const (...)` block and the []string vars of a Go file. */
export function goConstants (file: string): Record<string, GoValue> {
  const text = goFile(file)
  const out: Record<string, GoValue> = {}
  for (const block of text.matchAll(/^const \(\n([\s\S]*?)\n\)/gm)) {
    for (const m of (block[1] as string).matchAll(/^\t(\w+)\s*=\s*("(?:[^"\\]|\\.)*")$/gm)) out[m[1] as string] = JSON.parse(m[2] as string) as string
  }
  for (const m of text.matchAll(/^var (\w+) = (\[\]string\{[^}]*\})$/gm)) out[m[1] as string] = goEval(m[2] as string, out)
  return out
}

/** The Go constants sync_test.go and authenticator_test.go use, as keystone.go and sync.go define them. */
export function goKeystoneConstants (): Record<string, GoValue> {
  return { ...goConstants('keystone.go'), ...goConstants('sync.go') }
}

// --- sync_test.go ---

/** One `th.AssertEquals(t, <want>, <sc expression>)` of TestSyncConfigFromFile. */
export interface GoFieldCase { line: number, expr: string, want: GoValue }

/** The file TestSyncConfigFromFile reads, and each field it checks. */
export function goSyncConfigFromFileCases (): { file: string, cases: GoFieldCase[] } {
  const fn = goTestFunctions('sync_test.go').get('TestSyncConfigFromFile')
  if (fn === undefined) throw new Error('no TestSyncConfigFromFile')
  let file: string | undefined
  const cases: GoFieldCase[] = []
  for (const s of fn.statements) {
    const load = /^sc, err := newSyncConfigFromFile\(("[^"]+")\)$/.exec(s.text)
    if (load !== null) { file = JSON.parse(load[1] as string) as string; continue }
    if (s.text === 'th.AssertNoErr(t, err)') continue
    const args = callArgs(s.text, 'th.AssertEquals')
    if (args === undefined || args.length !== 3) throw new Error(`sync_test.go:${s.line}: unexpected ${s.text}`)
    cases.push({ line: s.line, expr: args[2] as string, want: goEval(args[1] as string, {}) })
  }
  if (file === undefined) throw new Error('TestSyncConfigFromFile reads no file')
  return { file, cases }
}

/** One `err = sc.validate()` of TestSyncConfigValidation: the fields set by then, and Go's answer. */
export interface GoValidationCase {
  line: number
  comment: string
  /** Go field name to value, as set on a fresh newSyncConfig() before validate(). */
  fields: Record<string, GoValue>
  /** Go's err.Error(), or null for no error. */
  error: string | null
}

export function goSyncConfigValidationCases (): GoValidationCase[] {
  const text = goFile('sync_test.go')
  const fn = goTestFunctions('sync_test.go').get('TestSyncConfigValidation')
  if (fn === undefined) throw new Error('no TestSyncConfigValidation')
  const vars = goKeystoneConstants()
  const lines = text.split('\n')
  const cases: GoValidationCase[] = []
  let fields: Record<string, GoValue> = {}
  for (const s of fn.statements) {
    if (/^sc :?= newSyncConfig\(\)$/.test(s.text)) { fields = {}; continue }
    const set = /^sc\.(\w+) = ([\s\S]+)$/.exec(s.text)
    if (set !== null) { fields[set[1] as string] = goEval(set[2] as string, vars); continue }
    if (/^err :?= sc\.validate\(\)$/.test(s.text)) {
      // The comment block above the assignments that led here names the case.
      let k = s.line - 2
      while (k > 0 && !(lines[k] as string).trim().startsWith('//') && (lines[k] as string).trim() !== '') k--
      cases.push({ line: s.line, comment: (lines[k] as string).trim().replace(/^\/\/\s*/, ''), fields: { ...fields }, error: null })
      continue
    }
    const last = cases[cases.length - 1]
    if (last === undefined) throw new Error(`sync_test.go:${s.line}: an assertion before any validate()`)
    if (s.text === 'th.AssertNoErr(t, err)') continue
    const args = callArgs(s.text, 'th.AssertEquals')
    if (args === undefined || args.length !== 3 || args[2] !== 'err.Error()') throw new Error(`sync_test.go:${s.line}: unexpected ${s.text}`)
    last.error = goEval(args[1] as string, vars) as string
  }
  return cases
}

/** One TestSyncRoles* function: the config, the user, and what Go expects of syncRoles(user). */
export interface GoSyncRolesCase {
  name: string
  line: number
  /** 'file': the mappings of `file`; 'nil': syncConfig nil; 'emptied': the file's config with RoleMaps = []. */
  config: 'file' | 'nil' | 'emptied'
  file?: string
  user: { Username: string, UID: string, Groups: string[], Extra: Record<string, string[]> }
  want: { username?: string, groups?: string[], unchanged?: boolean }
  /** The Go line of each expectation. */
  lines: number[]
}

export function goSyncRolesCases (): GoSyncRolesCase[] {
  const out: GoSyncRolesCase[] = []
  for (const fn of goTestFunctions('sync_test.go').values()) {
    if (!fn.name.startsWith('TestSyncRoles')) continue
    const vars: Record<string, GoValue> = { ...goKeystoneConstants() }
    let file: string | undefined
    let emptied = false
    let config: GoSyncRolesCase['config'] | undefined
    let user: GoSyncRolesCase['user'] | undefined
    const want: GoSyncRolesCase['want'] = {}
    const lines: number[] = []
    for (const s of fn.statements) {
      const where = `sync_test.go:${s.line}`
      const load = /^sc, err := newSyncConfigFromFile\(("[^"]+")\)$/.exec(s.text)
      if (load !== null) { file = JSON.parse(load[1] as string) as string; continue }
      if (s.text === 'th.AssertNoErr(t, err)') continue
      if (s.text === 'sc.RoleMaps = []*roleMap{}') { emptied = true; continue }
      const syncer = /^syncer := Syncer\{([\s\S]*)\}$/.exec(s.text)
      if (syncer !== null) {
        const sc = /syncConfig:\s*(\w+)/.exec(syncer[1] as string)?.[1]
        if (sc === 'nil') config = 'nil'
        else if (sc === 'sc' && file !== undefined) config = emptied ? 'emptied' : 'file'
        else throw new Error(`${where}: syncConfig ${String(sc)}`)
        continue
      }
      const userLit = /^user1 := (&userInfo\{[\s\S]*\})$/.exec(s.text)
      if (userLit !== null) { user = goEval(userLit[1] as string, vars) as GoSyncRolesCase['user']; continue }
      if (s.text === 'userModified := syncer.syncRoles(user1)') continue
      const assign = /^(\w+) := ([\s\S]+)$/.exec(s.text)
      if (assign !== null) { vars[assign[1] as string] = goEval(assign[2] as string, vars); continue }
      const eq = callArgs(s.text, 'th.AssertEquals')
      const deep = callArgs(s.text, 'th.AssertDeepEquals')
      if (eq?.[2] === 'userModified.Username') want.username = goEval(eq[1] as string, vars) as string
      else if (eq?.[1] === 'userModified' && eq[2] === 'user1') want.unchanged = true
      else if (deep?.[2] === 'userModified.Groups') want.groups = goEval(deep[1] as string, vars) as string[]
      else throw new Error(`${where}: unexpected ${s.text}`)
      lines.push(s.line)
    }
    if (config === undefined || user === undefined) throw new Error(`${fn.name}: no Syncer or no user`)
    out.push({ name: fn.name, line: fn.line, config, ...(file !== undefined ? { file } : {}), user, want, lines })
  }
  return out
}

// --- authenticator_test.go ---

export interface GoAuthenticateCase {
  line: number
  token: string
  /** The mocked GetTokenInfo answer: Go's tokenInfo fields. */
  tokenInfo: { userName: string, userID: string, projectID: string, projectName: string, domainName: string, domainID: string, roles: string[] }
  /** The mocked GetGroups(token, userID) answer. */
  groups: string[]
  groupsFor: { token: string, userID: string }
  expected: { Name: string, UID: string, Groups: string[], Extra: Record<string, string[]> }
  expectedLine: number
  allowed: boolean
}

export function goAuthenticateCases (): GoAuthenticateCase[] {
  const vars = goKeystoneConstants()
  const out: GoAuthenticateCase[] = []
  for (const fn of goTestFunctions('authenticator_test.go').values()) {
    const c: Partial<GoAuthenticateCase> = { line: fn.line }
    for (const s of fn.statements) {
      const where = `authenticator_test.go:${s.line}`
      const flat = s.text.replace(/\n/g, '')
      if (s.text === 'keystone := &MockIKeystone{}' || s.text === 'th.AssertNoErr(t, err)' || s.text === 'keystone.AssertExpectations(t)' ||
        /^a := &Authenticator\{\s*keystoner: keystone,\s*\}$/.test(s.text)) continue
      const mock = /^keystone\.On\(([^)]*)\)\.Return\(([\s\S]*)\)\.Once\(\)$/.exec(flat)
      if (mock !== null) {
        const on = splitArgs(mock[1] as string).map(x => goEval(x, vars)) as string[]
        const ret = splitArgs(mock[2] as string)
        if (ret[1] !== 'nil') throw new Error(`${where}: the mock returns an error`)
        if (on[0] === 'GetTokenInfo') {
          c.tokenInfo = goEval(ret[0] as string, vars) as GoAuthenticateCase['tokenInfo']
        } else if (on[0] === 'GetGroups') {
          c.groupsFor = { token: on[1] as string, userID: on[2] as string }
          c.groups = goEval(ret[0] as string, vars) as string[]
        } else throw new Error(`${where}: mock of ${String(on[0])}`)
        continue
      }
      const call = /^userInfo, allowed, err := a\.AuthenticateToken\(context\.TODO\(\), ("[^"]*")\)$/.exec(s.text)
      if (call !== null) { c.token = JSON.parse(call[1] as string) as string; continue }
      const exp = /^expectedUserInfo := (&user\.DefaultInfo\{[\s\S]*\})$/.exec(s.text)
      if (exp !== null) { c.expected = goEval(exp[1] as string, vars) as GoAuthenticateCase['expected']; c.expectedLine = s.line; continue }
      const eq = callArgs(s.text, 'th.AssertEquals')
      if (eq?.[2] === 'allowed') { c.allowed = goEval(eq[1] as string, vars) as boolean; continue }
      const deep = callArgs(s.text, 'th.AssertDeepEquals')
      if (deep?.[1] === 'expectedUserInfo' && deep[2] === 'userInfo') continue
      throw new Error(`${where}: unexpected ${s.text}`)
    }
    for (const k of ['token', 'tokenInfo', 'groups', 'expected', 'allowed'] as const) {
      if (c[k] === undefined) throw new Error(`${fn.name}: no ${k}`)
    }
    out.push(c as GoAuthenticateCase)
  }
  return out
}

// --- keystone_test.go ---

export interface GoUserAgentCase { line: number, name: string, shouldParse: boolean, flags: string[], expected: string[] | null }

/** The rows of TestUserAgentFlag's table. */
export function goUserAgentCases (): GoUserAgentCase[] {
  const lines = goFile('keystone_test.go').split('\n')
  const out: GoUserAgentCase[] = []
  lines.forEach((l, i) => {
    const m = /^\t\t\{(.*)\},$/.exec(l)
    if (m === null) return
    const [name, shouldParse, flags, expected] = splitArgs(m[1] as string).map(x => goEval(x, {}))
    out.push({ line: i + 1, name: name as string, shouldParse: shouldParse as boolean, flags: flags as string[], expected: expected as string[] | null })
  })
  return out
}
