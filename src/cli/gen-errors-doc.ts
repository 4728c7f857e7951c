import { CATALOG } from '../errors.js'

// docs/reference/errors.md is rendered from the catalog so that the page cannot drift from
// the codes the code throws; test/docs/errors-reference.test.ts renders it again and compares.

const cell = (s: string): string => s.replace(/\|/g, '\\|')

export function renderErrorsDoc (): string {
  const rows = Object.values(CATALOG).map(e => `| \`${e.code}\` | ${cell(e.class)} | ${cell(e.outcome)} | ${cell(e.meaning)} |`)
  return [
    '# Error codes',
    '',
    '<!-- Generated from src/errors.ts by `npm run docs:gen`; do not edit by hand. -->',
    '',
    'Every error k8s-keystone-auth and client-keystone-auth raise carries a stable `code`; logs show it',
    '(`code` field) and scripts should branch on it, never on the message text. Symptoms and their',
    'fixes are in [troubleshooting](../operators/troubleshooting.md).',
    '',
    '| Code | Class | Outcome | Meaning |',
    '| --- | --- | --- | --- |',
    ...rows,
    ''
  ].join('\n')
}
