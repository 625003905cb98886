import { DomainError } from '../common/errors/domain-error';

/** No version of the model (at the instant) in the catalog: 422, naming the model. */
export const priceNotFound = (modelId: string, provider: string | undefined, at: Date) =>
  new DomainError(
    422,
    'PRICE_NOT_FOUND',
    `The price catalog has no price for model "${modelId}"${provider ? ` of provider "${provider}"` : ''} at ${at.toISOString()}.`,
    [{ field: 'modelId', message: `modelId "${modelId}" has no price in the catalog at ${at.toISOString()}` }],
  );

/** The model id is listed by several providers and the data names none of them as its maker. */
export const providerRequired = (modelId: string, providers: string[]) =>
  new DomainError(
    422,
    'PROVIDER_REQUIRED',
    `Model "${modelId}" is priced by several providers (${providers.join(', ')}); name one in provider.`,
    [{ field: 'provider', message: `provider is required: model "${modelId}" is priced by ${providers.join(', ')}` }],
  );

/** An override that overlaps a version it may not close (a later one, a bounded one, one at the same instant). */
export const priceVersionConflict = (provider: string, modelId: string, existing?: { effectiveFrom: Date; effectiveTo: Date | null }) =>
  new DomainError(
    409,
    'PRICE_VERSION_CONFLICT',
    `The new version of ${provider}/${modelId} overlaps ` +
      (existing
        ? `the version effective from ${existing.effectiveFrom.toISOString()}` +
          `${existing.effectiveTo ? ` to ${existing.effectiveTo.toISOString()}` : ' (open-ended)'}`
        : 'a version stored concurrently') +
      '; only the open-ended version that starts earlier is closed by an override.',
    [{ field: 'effectiveFrom', message: 'effectiveFrom overlaps a version of this model that cannot be closed' }],
  );
