import { DynamicModule, Module } from '@nestjs/common';
import { ConfigModule } from '@nestjs/config';
import { TypeOrmModule } from '@nestjs/typeorm';
import { BudgetModule } from './budget/budget.module';
import { APP_CONFIG, type AppConfig } from './config/configuration';
import { dataSourceOptions } from './database/data-source.options';
import { HealthController } from './health/health.controller';

@Module({})
export class AppModule {
  /** The configuration is loaded and validated once by the caller (main.ts or a test). */
  static register(config: AppConfig): DynamicModule {
    if (!config.databaseUrl) throw new Error('AppModule needs a database URL (main.ts starts the embedded one)');
    return {
      module: AppModule,
      global: true,
      imports: [
        ConfigModule.forRoot({ isGlobal: true, ignoreEnvFile: true, load: [() => ({ app: config })] }),
        TypeOrmModule.forRoot({
          ...dataSourceOptions({
            url: config.databaseUrl,
            poolSize: config.databasePoolSize,
            statementTimeoutMs: config.statementTimeoutMs,
            connectionTimeoutMs: config.connectionTimeoutMs,
          }),
          migrationsRun: false,
          retryAttempts: 3,
          retryDelay: 1000,
        }),
        BudgetModule,
      ],
      controllers: [HealthController],
      providers: [{ provide: APP_CONFIG, useValue: config }],
      exports: [APP_CONFIG],
    };
  }
}
