import { PartialType } from '@nestjs/swagger';
import { CreateBudgetDto } from './create-budget.dto';

/** The seed's UpdateBudgetRequest: any subset of the create fields. */
export class UpdateBudgetDto extends PartialType(CreateBudgetDto) {}
