import { ApiProperty } from '@nestjs/swagger';
import { API_KEY_ROLES, type ApiKeyRole } from '../../auth/api-key-role';

/** The API key a request carries, as the dashboard shows it after sign-in. */
export class SessionDto {
  /** The key's name (what budgets record as createdBy and alerts as acknowledgedBy). */
  @ApiProperty({ example: 'finance-dashboard' })
  name: string;

  /** admin ⊇ service ⊇ viewer: what the key may do. */
  @ApiProperty({ enum: API_KEY_ROLES, example: 'viewer' })
  role: ApiKeyRole;
}
