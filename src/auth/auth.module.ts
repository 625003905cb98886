import { Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { ApiKeyController } from './api-key.controller';
import { ApiKeyGuard } from './api-key.guard';
import { ApiKeyRepository } from './api-key.repository';
import { ApiKeyService } from './api-key.service';
import { RouteAccessReader } from './route-access';

/** API keys, roles and the global guard (registered as APP_GUARD by the AppModule). */
@Module({
  imports: [DiscoveryModule],
  controllers: [ApiKeyController],
  providers: [ApiKeyRepository, ApiKeyService, ApiKeyGuard, RouteAccessReader],
  exports: [ApiKeyService, ApiKeyGuard, RouteAccessReader],
})
export class AuthModule {}
