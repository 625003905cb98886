import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import { DomainError } from '../common/errors/domain-error';

const VERSION = 'v1';

/**
 * Webhook secrets at rest: AES-256-GCM under SECRETS_KEY, stored as `v1:<iv>:<tag>:<ciphertext>`
 * (base64). Without SECRETS_KEY, development and tests use a key generated once into
 * SECRETS_KEY_FILE (.data/secrets.key, beside the embedded database); production has none, and
 * start-up refuses when channels exist (NotificationStartupCheck).
 */
@Injectable()
export class SecretBox {
  private key: Buffer | undefined;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  /** Whether a key is configured or may be generated here. */
  available(): boolean {
    return this.config.notify.secretsKey !== undefined || this.config.nodeEnv !== 'production';
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.loadKey(), iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64'), cipher.getAuthTag().toString('base64'), body.toString('base64')].join(':');
  }

  decrypt(sealed: string): string {
    const [version, iv, tag, body] = sealed.split(':');
    if (version !== VERSION || !iv || !tag || body === undefined) throw new Error('not a sealed secret');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.loadKey(), Buffer.from(iv, 'base64'));
      decipher.setAuthTag(Buffer.from(tag, 'base64'));
      return Buffer.concat([decipher.update(Buffer.from(body, 'base64')), decipher.final()]).toString('utf8');
    } catch {
      throw new Error('the webhook secret cannot be decrypted with this SECRETS_KEY (was the key changed?)');
    }
  }

  private loadKey(): Buffer {
    this.key ??= this.config.notify.secretsKey ?? this.developmentKey();
    return this.key;
  }

  private developmentKey(): Buffer {
    if (this.config.nodeEnv === 'production') {
      throw new DomainError(503, 'SECRETS_KEY_MISSING', 'SECRETS_KEY is not configured, so webhook secrets cannot be stored or used.');
    }
    const file = this.config.notify.secretsKeyFile;
    if (!existsSync(file)) {
      mkdirSync(dirname(file), { recursive: true });
      try {
        writeFileSync(file, randomBytes(32).toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
      } catch (error) {
        // Another process created it first: use theirs.
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
    chmodSync(file, 0o600);
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64 key`);
    return key;
  }
}
