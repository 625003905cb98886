import { Controller, Delete, HttpCode, Param } from '@nestjs/common';
import { ApiNoContentResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/require-role.decorator';
import { IdParamDto } from '../common/dto/id-param.dto';
import { ApiProblems } from '../common/errors/api-problems.decorator';
import { ReservationService } from './reservation.service';

@ApiTags('Constraints')
@Controller('reservations')
export class ReservationController {
  constructor(private readonly reservations: ReservationService) {}

  @Delete(':id')
  @HttpCode(204)
  @RequireRole('service')
  @ApiOperation({ operationId: 'releaseReservation', summary: 'Release a hold before its TTL (nothing is recorded)' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404, 409)
  release(@Param() { id }: IdParamDto): Promise<void> {
    return this.reservations.release(id);
  }
}
