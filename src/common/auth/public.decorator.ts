import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'relaycore:public';

/** A route that needs no API key (health, docs, metrics). */
export const Public = () => SetMetadata(IS_PUBLIC, true);
