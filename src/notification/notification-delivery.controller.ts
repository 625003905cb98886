import { Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiAcceptedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/require-role.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import type { Page } from '../common/pagination';
import { DeliveryPageDto, DeliveryResponseDto } from './dto/delivery-response.dto';
import { ListDeliveriesQueryDto } from './dto/list-deliveries.query.dto';
import { NotificationDeliveryService } from './notification-delivery.service';

@ApiTags('Notifications')
@Controller('notification-deliveries')
export class NotificationDeliveryController {
  constructor(private readonly deliveries: NotificationDeliveryService) {}

  @Get()
  @RequireRole('viewer')
  @ApiOperation({ operationId: 'listNotificationDeliveries', summary: 'List deliveries (newest first) with their attempts' })
  @ApiOkResponse({ type: DeliveryPageDto })
  @ApiProblems(400)
  list(@Query() query: ListDeliveriesQueryDto): Promise<Page<DeliveryResponseDto>> {
    return this.deliveries.listDeliveries(query);
  }

  @Post(':id/retry')
  @HttpCode(202)
  @RequireRole('admin')
  @ApiOperation({ operationId: 'retryNotificationDelivery', summary: 'Send a failed delivery again (same webhook-id)' })
  @ApiAcceptedResponse({ type: DeliveryResponseDto })
  @ApiProblems(400, 404, 409)
  retry(@Param() { id }: IdParamDto): Promise<DeliveryResponseDto> {
    return this.deliveries.retryDelivery(id);
  }
}
