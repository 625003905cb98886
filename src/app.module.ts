import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { APP_GUARD } from '@nestjs/core';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { ScheduleModule } from '@nestjs/schedule';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';
import { ApiKeyGuard } from './auth/api-key.guard';
import { AuthModule } from './auth/auth.module';
import { BudgetModule } from './budget/budget.module';
import { Clock } from './common/clock';
import { RequestLoad } from './common/request-load';
import { ConstraintModule } from './constraint/constraint.module';
import { DashboardModule } from './dashboard/dashboard.module';
import { APP_CONFIG, type AppConfig } from './config/configuration';
import { dataSourceOptions } from './database/data-source.options';
import { installPreparedStatements } from './database/prepared-statements';
import { HealthModule } from './health/health.module';
import { NotificationModule } from './notification/notification.module';
import { ObservabilityModule } from './observability/observability.module';
import { PricingModule } from './pricing/pricing.module';
import { ReportingModule } from './reporting/reporting.module';
import { UsageModule } from './usage/usage.module';

@Module({})
export class AppModule {
  /** The configuration is loaded and validated once by the caller (main.ts or a test). */
  static register(config: AppConfig): DynamicModule {
    const databaseUrl = config.databaseUrl;
    if (!databaseUrl) throw new Error('AppModule needs a database URL (main.ts starts the embedded one)');
    return {
      module: AppModule,
      global: true,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => ({ app: config })] }),
        TypeOrmModule.forRootAsync({
          useFactory: () => ({
            ...dataSourceOptions({
              url: databaseUrl,
              poolSize: config.databasePoolSize,
              statementTimeoutMs: config.statementTimeoutMs,
              connectionTimeoutMs: config.connectionTimeoutMs,
              poolMode: config.databasePoolMode,
            }),
            migrationsRun: false,
            retryAttempts: 3,
            retryDelay: 1000,
          }),
          // The hot path's marked statements run prepared (src/database/prepared-statements.ts).
          dataSourceFactory: async (options) => {
            const dataSource = await new DataSource(options!).initialize();
            installPreparedStatements(dataSource, config.databasePoolMode);
            return dataSource;
          },
        }),
        EventEmitterModule.forRoot(),
        ObservabilityModule,
        HealthModule,
        ScheduleModule.forRoot(),
        AuthModule,
        BudgetModule,
        PricingModule,
        UsageModule,
        ConstraintModule,
        ReportingModule,
        NotificationModule,
        DashboardModule,
      ],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        Clock,
        RequestLoad,
        // Every route needs an API key unless it is @Public(); see src/auth.
        { provide: APP_GUARD, useExisting: ApiKeyGuard },
      ],
      exports: [APP_CONFIG, Clock, RequestLoad],
    };
  }
}
