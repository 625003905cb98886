import type { AppConfig } from '../config/configuration';
import type { ApiKeyService } from './api-key.service';

/** The key `npm start` creates on a fresh development database. */
export const DEVELOPMENT_ADMIN_KEY_NAME = 'development-admin';

/** The service must not start: the message says what to do. */
export class StartupRefusedError extends Error {}

const CREATE_ADMIN_HINT = 'npm run apikey -- create --name <your-name> --role admin';

/**
 * The start-up checks of API keys; returns the lines for the start-up banner.
 * - production: some admin key must be usable (ADMIN_API_KEY or a live admin key), else refuse.
 * - development on the embedded database with no live key: create `development-admin` and
 *   return it for the banner. This is the only time the key is shown; only its hash is stored.
 */
export async function prepareApiKeys(
  keys: ApiKeyService,
  config: AppConfig,
  context: { embeddedDatabase: boolean },
): Promise<string[]> {
  const live = await keys.listLiveKeys();
  const liveAdmins = live.filter((key) => key.role === 'admin').length;
  const envKey = config.adminApiKey ? ' + ADMIN_API_KEY' : '';
  const summary = `  API keys:   ${live.length} live (${liveAdmins} admin)${envKey}`;

  if (config.nodeEnv === 'production') {
    if (!config.adminApiKey && liveAdmins === 0) {
      throw new StartupRefusedError(
        'NODE_ENV=production and no admin API key is usable: set ADMIN_API_KEY (a random secret of at least ' +
          `24 characters) or create an admin key in the database first (${CREATE_ADMIN_HINT}).`,
      );
    }
    return [summary];
  }

  if (config.nodeEnv !== 'development' || !context.embeddedDatabase) return [summary];

  if (live.length === 0) {
    const created = await keys.createKey({ name: DEVELOPMENT_ADMIN_KEY_NAME, role: 'admin' }, 'start-up');
    return [
      `  Admin key:  ${created.key}`,
      '              development only, shown this once (only its hash is stored): keep it.',
      '              Swagger UI: "Authorize", paste it, then "Try it out".',
    ];
  }
  const development = live.find((key) => key.name === DEVELOPMENT_ADMIN_KEY_NAME);
  return [
    development
      ? `  Admin key:  "${DEVELOPMENT_ADMIN_KEY_NAME}" (${development.prefix}…) exists; it was shown when created.`
      : summary,
    `              Another key: ${CREATE_ADMIN_HINT}`,
  ];
}
