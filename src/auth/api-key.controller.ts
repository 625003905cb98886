import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Actor } from '../common/auth/actor.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import type { Page } from '../common/pagination';
import { ApiKeyService } from './api-key.service';
import { ApiKeyPageDto, CreatedApiKeyDto, type ApiKeyResponseDto } from './dto/api-key-response.dto';
import { CreateApiKeyDto } from './dto/create-api-key.dto';
import { ListApiKeysQueryDto } from './dto/list-api-keys.query.dto';
import { RequireRole } from './require-role.decorator';

@ApiTags('API keys')
@RequireRole('admin')
@Controller('api-keys')
export class ApiKeyController {
  constructor(private readonly keys: ApiKeyService) {}

  @Post()
  @ApiOperation({ operationId: 'createApiKey', summary: 'Create an API key (the key is in this answer only)' })
  @ApiCreatedResponse({ type: CreatedApiKeyDto })
  @ApiProblems(400, 413, 415)
  create(@Body() body: CreateApiKeyDto, @Actor() actor: string): Promise<CreatedApiKeyDto> {
    return this.keys.createKey(body, actor);
  }

  @Get()
  @ApiOperation({ operationId: 'listApiKeys', summary: 'List API keys (never the keys themselves)' })
  @ApiOkResponse({ type: ApiKeyPageDto })
  @ApiProblems(400)
  list(@Query() query: ListApiKeysQueryDto): Promise<Page<ApiKeyResponseDto>> {
    return this.keys.listKeys(query);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'revokeApiKey', summary: 'Revoke an API key' })
  @ApiNoContentResponse({
    description: 'Revoked: refused at once by this instance, by others once their key cache expires (15 s by default).',
  })
  @ApiProblems(400, 404)
  revoke(@Param() { id }: IdParamDto, @Actor() actor: string): Promise<void> {
    return this.keys.revokeKey(id, actor);
  }
}
