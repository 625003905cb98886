/** What a key may do: admin everything; service checks, reservations, usage writes and reads; viewer reads. */
export const API_KEY_ROLES = ['viewer', 'service', 'admin'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];

const RANK: Record<ApiKeyRole, number> = { viewer: 1, service: 2, admin: 3 };

/** admin ⊇ service ⊇ viewer: a key may do what its role or any lower role may do. */
export function roleAllows(actual: ApiKeyRole, required: ApiKeyRole): boolean {
  return RANK[actual] >= RANK[required];
}
