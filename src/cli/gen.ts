import type { Io } from './k8s-keystone-auth.js'

export async function runGenCommand (_argv: string[], _env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  io.stderr('k8s-keystone-auth gen: not implemented yet\n')
  return 2
}
