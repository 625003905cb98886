import { Body, Controller, Get, Param, Put, Query, Res } from '@nestjs/common';
import { ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { RequireRole } from '../auth/require-role.decorator';
import { Actor } from '../common/auth/actor.decorator';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import type { Page } from '../common/pagination';
import { ListPricesQueryDto } from './dto/list-prices.query.dto';
import { PricePageDto, PriceResponseDto } from './dto/price-response.dto';
import { PriceParamsDto, PutModelPriceDto } from './dto/put-price.dto';
import { PriceCatalogService } from './price-catalog.service';

@ApiTags('Prices')
@RequireRole('admin')
@Controller('prices')
export class PriceCatalogController {
  constructor(private readonly catalog: PriceCatalogService) {}

  @Get()
  @RequireRole('viewer')
  @ApiOperation({
    operationId: 'listPrices',
    summary: 'List model price versions (filters provider, modelId, at; cursor pagination)',
  })
  @ApiOkResponse({ type: PricePageDto })
  @ApiProblems(400)
  list(@Query() query: ListPricesQueryDto): Promise<Page<PriceResponseDto>> {
    return this.catalog.listPrices(query);
  }

  @Put(':provider/:modelId')
  @ApiOperation({
    operationId: 'putModelPrice',
    summary: 'Add a version of a model\'s prices from effectiveFrom (closes the open-ended one before it)',
  })
  @ApiCreatedResponse({ type: PriceResponseDto, description: 'The version was added.' })
  @ApiOkResponse({ type: PriceResponseDto, description: 'The same version was already stored (a replayed PUT).' })
  @ApiProblems(400, 409, 413, 415)
  async put(
    @Param() params: PriceParamsDto,
    @Body() body: PutModelPriceDto,
    @Actor() actor: string,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<PriceResponseDto> {
    const { price, created } = await this.catalog.putPrice(params, body, actor);
    reply.status(created ? 201 : 200);
    return price;
  }
}
