import { validationFailed } from '../common/errors/domain-error';
import { canonicalJson, sha256Hex } from '../common/hashing';
import { Decimal, toMoneyString } from '../common/money';
import { LIFTED_METADATA_FIELDS, type RecordUsageDto } from './dto/record-usage.dto';
import type { UsageWrite } from './usage.repository';

/** How far in the future occurredAt may lie (clock skew between RelayCore and this service). */
const FUTURE_TOLERANCE_MS = 5 * 60_000;

type LiftedField = (typeof LIFTED_METADATA_FIELDS)[number];

/**
 * A validated usage body normalised into the shape the ledger functions take: the time rule,
 * the fields lifted from metadata, the idempotency key (header, else requestId) and the hash of
 * the body as the client meant it, which decides whether a retry is a replay or a conflict.
 */
export function toUsageWrite(budgetId: string, dto: RecordUsageDto, idempotencyKey: string | undefined, now: Date): UsageWrite {
  const occurredAt = dto.occurredAt ? new Date(dto.occurredAt) : now;
  if (occurredAt.getTime() > now.getTime() + FUTURE_TOLERANCE_MS) {
    throw validationFailed([{ field: 'occurredAt', message: 'occurredAt must not be more than 5 minutes in the future' }]);
  }
  const lifted = liftMetadata(dto);
  const key = idempotencyKey?.trim() || lifted.requestId || null;
  if (key !== null && key.length > 200) {
    throw validationFailed([{ field: 'Idempotency-Key', message: 'must be at most 200 characters' }]);
  }
  const tokens = tokensOf(dto, lifted.modelId);
  const amount = dto.amount === undefined ? null : toMoneyString(dto.amount);
  const write: UsageWrite = {
    budgetId,
    amount,
    currency: dto.currency,
    source: dto.source ?? 'api',
    description: dto.description ?? null,
    modelId: lifted.modelId,
    userId: lifted.userId,
    teamId: lifted.teamId,
    projectId: lifted.projectId,
    customerId: dto.customerId ?? null,
    tags: dto.tags?.length ? [...new Set(dto.tags)] : null,
    requestId: lifted.requestId,
    idempotencyKey: key,
    requestHash: '',
    metadata: dto.metadata ?? null,
    occurredAt,
    reservationId: dto.reservationId ?? null,
    ...tokens,
    priceMaker: null,
    priceAliasProvider: null,
    priceAliasModelId: null,
  };
  // The body as the client meant it: an omitted occurredAt ("now") is the same request on retry,
  // and a token-priced one hashes its tokens, not the amount they cost (a replay after a price
  // change is the same request). The catalog's lookup hints are derived, not the client's.
  write.requestHash = sha256Hex(
    canonicalJson({ ...write, requestHash: undefined, idempotencyKey: undefined, budgetId: undefined,
      priceMaker: undefined, priceAliasProvider: undefined, priceAliasModelId: undefined,
      // Absent, the new fields leave the hash of a body as it was before they existed.
      customerId: write.customerId ?? undefined, tags: write.tags ?? undefined,
      provider: write.provider ?? undefined, inputTokens: write.inputTokens ?? undefined,
      outputTokens: write.outputTokens ?? undefined, cachedInputTokens: write.cachedInputTokens ?? undefined,
      amount: amount === null ? undefined : new Decimal(amount).toFixed(),
      occurredAt: dto.occurredAt ? occurredAt.toISOString() : undefined }),
  );
  return write;
}

type UsageTokens = Pick<UsageWrite, 'provider' | 'inputTokens' | 'outputTokens' | 'cachedInputTokens'>;

/**
 * SPEC §14: `amount`, or tokens priced from the catalog (which need the model and both counts).
 * Token fields given with an amount are kept as given, so they need both counts too (the ledger
 * stores either both or neither).
 */
function tokensOf(dto: RecordUsageDto, modelId: string | null): UsageTokens {
  const anyTokens = dto.inputTokens !== undefined || dto.outputTokens !== undefined || dto.cachedInputTokens !== undefined;
  if (dto.amount === undefined && !anyTokens) {
    throw validationFailed([{ field: 'amount', message: 'amount is required unless the usage carries modelId, inputTokens and outputTokens' }]);
  }
  const problems = [];
  if (anyTokens && dto.inputTokens === undefined) problems.push({ field: 'inputTokens', message: 'inputTokens is required with outputTokens or cachedInputTokens' });
  if (anyTokens && dto.outputTokens === undefined) problems.push({ field: 'outputTokens', message: 'outputTokens is required with inputTokens or cachedInputTokens' });
  if (dto.amount === undefined && modelId === null) problems.push({ field: 'modelId', message: 'modelId is required to price tokens' });
  if (problems.length) throw validationFailed(problems);
  return {
    provider: dto.provider ?? null,
    inputTokens: dto.inputTokens ?? null,
    outputTokens: dto.outputTokens ?? null,
    cachedInputTokens: dto.cachedInputTokens ?? null,
  };
}

/** The seed puts requestId, modelId, userId and teamId inside metadata: a top-level field wins. */
function liftMetadata(dto: RecordUsageDto): Record<LiftedField, string | null> {
  const lifted = {} as Record<LiftedField, string | null>;
  const problems = [];
  for (const field of LIFTED_METADATA_FIELDS) {
    const fromMetadata = dto.metadata?.[field];
    if (fromMetadata !== undefined && fromMetadata !== null && (typeof fromMetadata !== 'string' || fromMetadata.length < 1 || fromMetadata.length > 200)) {
      problems.push({ field: `metadata.${field}`, message: `metadata.${field} must be a string of 1–200 characters` });
    }
    lifted[field] = dto[field] ?? (typeof fromMetadata === 'string' ? fromMetadata : null);
  }
  if (problems.length) throw validationFailed(problems);
  return lifted;
}
