import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Principal } from '../auth/principal.decorator';
import { RequireRole } from '../auth/require-role.decorator';
import type { RequestPrincipal } from '../common/auth/actor.decorator';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { SessionDto } from './dto/session.dto';

/** "Who am I": the dashboard signs in with it and shows only what the key's role allows. */
@ApiTags('Dashboard')
@Controller('session')
export class SessionController {
  @Get()
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'getSession', summary: 'The API key this request carries: its name and role' })
  @ApiOkResponse({ type: SessionDto })
  @ApiProblems()
  get(@Principal() principal: RequestPrincipal): SessionDto {
    return { name: principal.name, role: principal.role };
  }
}
