// Where a command writes; its own file so gen.ts and k8s-keystone-auth.ts (which loads gen.ts lazily) need not import each other.
export interface Io {
  stdout: (s: string) => void
  stderr: (s: string) => void
}
