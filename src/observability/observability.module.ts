import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { MetricsController } from './metrics.controller';
import { MetricsInterceptor } from './metrics.interceptor';
import { MetricsService } from './metrics.service';
import { ShutdownState } from './shutdown-state';
import { TransientRetryInstaller } from './transient-retry.installer';

/** Metrics, the deadlock/serialization retry and the shutdown flag. Logging is LoggerModule's (app.module.ts). */
@Global()
@Module({
  controllers: [MetricsController],
  providers: [
    MetricsService,
    TransientRetryInstaller,
    ShutdownState,
    { provide: APP_INTERCEPTOR, useClass: MetricsInterceptor },
  ],
  exports: [MetricsService, ShutdownState],
})
export class ObservabilityModule {}
