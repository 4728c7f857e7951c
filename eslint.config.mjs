// neostandard (the Standard style, as Fastify and undici use it) with its TypeScript rules.
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'test/fixtures/**', 'node_modules/**', 'coverage/**', '.tap/**']
  }),
  {
    rules: {
      // `void promise` marks a promise deliberately not awaited (a watcher started in the
      // background, a log-only check); as an expression elsewhere it stays an error.
      'no-void': ['error', { allowAsStatement: true }]
    }
  }
]
