import { readFileSync } from 'node:fs'

// Read at run time so that the built dist/ and the TypeScript sources report the same version
// without a generated file.
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

export const VERSION: string = pkg.version
export const USER_AGENT = `k8s-keystone-auth/${VERSION}`
