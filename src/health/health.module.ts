import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { HealthController } from './health.controller';
import { DatabaseSettingsRepository } from './database-settings.repository';
import { MigrationStatusRepository } from './migration-status.repository';
import { PoolerSettingsCheck } from './pooler-settings.check';

@Module({
  // A failing probe is an answer, not an incident: no error log per probe while the database is away.
  imports: [TerminusModule.forRoot({ logger: false })],
  controllers: [HealthController],
  providers: [MigrationStatusRepository, DatabaseSettingsRepository, PoolerSettingsCheck],
})
export class HealthModule {}
