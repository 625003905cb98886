import { Global, Module } from '@nestjs/common';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';
import { ShutdownState } from './shutdown-state';
import { TransientRetryInstaller } from './transient-retry.installer';

/** Metrics, the deadlock/serialization retry and the shutdown flag. Logging and the business counters are hooks of createApp and configureApp (app.setup.ts). */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    MetricsService,
    TransientRetryInstaller,
    ShutdownState,
  ],
  exports: [MetricsService, ShutdownState],
})
export class ObservabilityModule {}
