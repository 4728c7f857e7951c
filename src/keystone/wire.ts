import { z } from 'zod'

// Keystone v3 wire formats, parsed at the edge and turned into the small records of types.ts.
// Schemas are lenient about fields we don't use (Keystone adds fields across releases) and strict
// about the ones we rely on.

const Ref = z.object({ id: z.string(), name: z.string().optional() }).passthrough()
const DomainRef = z.object({ id: z.string(), name: z.string().optional() }).passthrough()

export const TokenBody = z.object({
  token: z.object({
    methods: z.array(z.string()).default([]),
    expires_at: z.string(),
    issued_at: z.string().optional(),
    user: z.object({
      id: z.string(),
      name: z.string(),
      domain: DomainRef.optional(),
      'OS-FEDERATION': z.object({
        groups: z.array(z.object({ id: z.string() }).passthrough()).default([]),
        identity_provider: Ref.optional(),
        protocol: Ref.optional()
      }).passthrough().optional()
    }).passthrough(),
    project: z.object({ id: z.string(), name: z.string(), domain: DomainRef.optional() }).passthrough().optional(),
    domain: z.object({ id: z.string(), name: z.string().optional() }).passthrough().optional(),
    system: z.record(z.string(), z.unknown()).optional(),
    roles: z.array(Ref).optional(),
    audit_ids: z.array(z.string()).optional(),
    'OS-TRUST:trust': z.object({
      id: z.string(),
      trustor_user: z.object({ id: z.string() }).passthrough(),
      trustee_user: z.object({ id: z.string() }).passthrough()
    }).passthrough().optional(),
    application_credential: z.object({
      id: z.string(),
      name: z.string().optional(),
      restricted: z.boolean().optional(),
      // Sent only to a service that says it enforces them (OpenStack-Identity-Access-Rules).
      access_rules: z.array(z.object({ service: z.string(), method: z.string(), path: z.string() }).passthrough()).optional()
    }).passthrough().optional()
  }).passthrough()
}).passthrough()
// eslint-disable-next-line @typescript-eslint/no-redeclare -- zod's idiom: the schema and its type share one name
export type TokenBody = z.infer<typeof TokenBody>

export const GroupsBody = z.object({
  groups: z.array(z.object({ id: z.string(), name: z.string(), domain_id: z.string().optional() }).passthrough()),
  links: z.object({ next: z.string().nullable().optional() }).passthrough().optional()
}).passthrough()

export const GroupBody = z.object({
  group: z.object({ id: z.string(), name: z.string(), domain_id: z.string().optional() }).passthrough()
}).passthrough()

export const ProjectsBody = z.object({
  projects: z.array(z.object({ id: z.string(), name: z.string(), domain_id: z.string().optional() }).passthrough()),
  links: z.object({ next: z.string().nullable().optional() }).passthrough().optional()
}).passthrough()

/** GET /v3/OS-REVOKE/events (keystone/api/os_revoke.py; the fields of RevokeEvent.to_dict()). */
const RevocationEventWire = z.object({
  user_id: z.string().optional(),
  project_id: z.string().optional(),
  domain_id: z.string().optional(),
  domain_scope_id: z.string().optional(),
  audit_id: z.string().optional(),
  audit_chain_id: z.string().optional(),
  role_id: z.string().optional(),
  'OS-TRUST:trust_id': z.string().optional(),
  'OS-OAUTH1:consumer_id': z.string().optional(),
  'OS-OAUTH1:access_token_id': z.string().optional(),
  expires_at: z.string().optional(),
  issued_before: z.string(),
  revoked_at: z.string()
}).passthrough()

export const RevocationEventsBody = z.object({ events: z.array(RevocationEventWire) }).passthrough()

export const ProjectBody = z.object({
  project: z.object({ id: z.string(), name: z.string(), enabled: z.boolean().optional(), domain_id: z.string().optional() }).passthrough()
}).passthrough()

/** GET /v3/role_assignments?include_names: only the role's name is read. */
export const RoleAssignmentsBody = z.object({
  role_assignments: z.array(z.object({ role: z.object({ id: z.string(), name: z.string() }).passthrough() }).passthrough())
}).passthrough()
