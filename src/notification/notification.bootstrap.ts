import { StartupRefusedError } from '../auth/api-key.bootstrap';
import type { NotificationChannelService } from './notification-channel.service';

/** Start-up check (main.ts): production refuses to start with channels but no SECRETS_KEY. */
export async function checkSecretsKey(channels: NotificationChannelService): Promise<void> {
  const count = await channels.channelsWithoutKey();
  if (count > 0) {
    throw new StartupRefusedError(
      `SECRETS_KEY is required: ${count} notification channel(s) exist and their webhook secrets are encrypted under it ` +
        '(set the same 32-byte key the service used when they were created).',
    );
  }
}
