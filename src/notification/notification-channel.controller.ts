import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import {
  ApiAcceptedResponse, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags,
} from '@nestjs/swagger';
import { RequireRole } from '../auth/require-role.decorator';
import { Actor } from '../common/auth/actor.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { PageQuery, type Page } from '../common/pagination';
import {
  ChannelPageDto, ChannelResponseDto, CreatedChannelDto, RotatedSecretDto, TestNotificationAcceptedDto,
} from './dto/channel-response.dto';
import { CreateChannelDto } from './dto/create-channel.dto';
import { UpdateChannelDto } from './dto/update-channel.dto';
import { NotificationChannelService } from './notification-channel.service';

@ApiTags('Notifications')
@RequireRole('admin')
@Controller('notification-channels')
export class NotificationChannelController {
  constructor(private readonly channels: NotificationChannelService) {}

  @Post()
  @ApiOperation({ operationId: 'createNotificationChannel', summary: 'Create a webhook, Slack or email channel (a webhook secret is in this answer only)' })
  @ApiCreatedResponse({ type: CreatedChannelDto })
  @ApiProblems(400, 409, 413, 415, 422)
  create(@Body() body: CreateChannelDto, @Actor() actor: string): Promise<CreatedChannelDto> {
    return this.channels.createChannel(body, actor);
  }

  @Get()
  @ApiOperation({ operationId: 'listNotificationChannels', summary: 'List notification channels (never their secrets)' })
  @ApiOkResponse({ type: ChannelPageDto })
  @ApiProblems(400)
  list(@Query() query: PageQuery): Promise<Page<ChannelResponseDto>> {
    return this.channels.listChannels(query);
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getNotificationChannel', summary: 'Get a notification channel' })
  @ApiOkResponse({ type: ChannelResponseDto })
  @ApiProblems(400, 404)
  get(@Param() { id }: IdParamDto): Promise<ChannelResponseDto> {
    return this.channels.getChannel(id);
  }

  @Put(':id')
  @ApiOperation({ operationId: 'updateNotificationChannel', summary: 'Change a channel (name, url, recipients, enabled)' })
  @ApiOkResponse({ type: ChannelResponseDto })
  @ApiProblems(400, 404, 409, 413, 415, 422)
  update(@Param() { id }: IdParamDto, @Body() body: UpdateChannelDto): Promise<ChannelResponseDto> {
    return this.channels.updateChannel(id, body);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ operationId: 'deleteNotificationChannel', summary: 'Delete a channel (its delivery history is kept)' })
  @ApiNoContentResponse({ description: 'Deleted: it receives nothing more.' })
  @ApiProblems(400, 404)
  remove(@Param() { id }: IdParamDto): Promise<void> {
    return this.channels.deleteChannel(id);
  }

  @Post(':id/test')
  @HttpCode(202)
  @ApiOperation({ operationId: 'testNotificationChannel', summary: 'Queue a notification.test event for the channel' })
  @ApiAcceptedResponse({ type: TestNotificationAcceptedDto })
  @ApiProblems(400, 404, 409)
  test(@Param() { id }: IdParamDto, @Actor() actor: string): Promise<TestNotificationAcceptedDto> {
    return this.channels.sendTest(id, actor);
  }

  @Post(':id/rotate-secret')
  @HttpCode(200)
  @ApiOperation({ operationId: 'rotateNotificationChannelSecret', summary: 'New webhook secret; the old one keeps signing for 24 h' })
  @ApiOkResponse({ type: RotatedSecretDto })
  @ApiProblems(400, 404, 422)
  rotate(@Param() { id }: IdParamDto): Promise<RotatedSecretDto> {
    return this.channels.rotateSecret(id);
  }
}
