import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { MetricsService } from './metrics.service';
import { installTransientRetry } from './transient-retry';

/** Puts the deadlock/serialization retry on the DataSource at start-up (see transient-retry.ts for why there). */
@Injectable()
export class TransientRetryInstaller implements OnModuleInit {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly metrics: MetricsService,
  ) {}

  onModuleInit(): void {
    installTransientRetry(
      this.dataSource,
      { attempts: this.config.databaseRetryAttempts, baseDelayMs: 10, maxDelayMs: 200 },
      (sqlState) => this.metrics.countTransientRetry(sqlState),
    );
  }
}
