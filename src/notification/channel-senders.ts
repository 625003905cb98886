import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import nodemailer, { type Transporter } from 'nodemailer';
import { Webhook } from 'standardwebhooks';
import { APP_CONFIG, type AppConfig } from '../config/configuration';
import type { ChannelRow } from './channel.repository';
import type { AttemptResult } from './delivery-policy';
import { postJson, TransportError } from './guarded-http';
import { emailMessage, eventBody, slackMessage, type OutboxEvent } from './notification-message';
import { SecretBox } from './secret-box';

/** One attempt of one event on one channel, by the channel's type; never throws. */
@Injectable()
export class ChannelSenders implements OnModuleDestroy {
  private mailer: Transporter | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly secrets: SecretBox,
  ) {}

  async send(event: OutboxEvent, channel: ChannelRow, now = new Date()): Promise<AttemptResult> {
    try {
      switch (channel.type) {
        case 'webhook':
          return await this.post(channel.url!, eventBody(event), this.signatureHeaders(event, channel, now, eventBody(event)));
        case 'slack':
          return await this.post(channel.url!, JSON.stringify(slackMessage(event, this.config.notify.publicBaseUrl)), {});
        case 'email':
          return await this.mail(event, channel.recipients ?? []);
      }
    } catch (error) {
      return { error: error instanceof TransportError ? error.message : describe(error) };
    }
  }

  /**
   * Standard Webhooks 1.0: webhook-id is the event id (the same on every retry); during a
   * rotation's overlap both secrets sign, space-separated, so receivers holding either verify.
   */
  private signatureHeaders(event: OutboxEvent, channel: ChannelRow, now: Date, body: string): Record<string, string> {
    const sealed = [channel.secretEncrypted!];
    if (channel.previousSecretEncrypted && channel.previousSecretExpiresAt && channel.previousSecretExpiresAt > now) {
      sealed.push(channel.previousSecretEncrypted);
    }
    return {
      'webhook-id': event.id,
      'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
      'webhook-signature': sealed.map((secret) => new Webhook(this.secrets.decrypt(secret)).sign(event.id, now, body)).join(' '),
    };
  }

  private async post(url: string, body: string, headers: Record<string, string>): Promise<AttemptResult> {
    const answer = await postJson(url, body, headers, {
      timeoutMs: this.config.notify.timeoutMs,
      allowPrivateNetworks: this.config.notify.allowPrivateNetworks,
    });
    return { status: answer.status, retryAfterSeconds: answer.retryAfterSeconds };
  }

  private async mail(event: OutboxEvent, recipients: string[]): Promise<AttemptResult> {
    const mailer = this.transport();
    if (!mailer) return { error: 'SMTP_URL is not configured' };
    const message = emailMessage(event, this.config.notify.publicBaseUrl);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TransportError(`the SMTP exchange took over ${this.config.notify.timeoutMs} ms`)), this.config.notify.timeoutMs);
    });
    try {
      await Promise.race([
        mailer.sendMail({
          from: this.config.notify.notifyFrom,
          to: recipients,
          subject: message.subject,
          text: message.text,
          html: message.html,
          headers: { 'X-RelayCore-Event-Id': event.id },
        }),
        deadline,
      ]);
      return {};
    } finally {
      clearTimeout(timer);
    }
  }

  private transport(): Transporter | undefined {
    const url = this.config.notify.smtpUrl;
    if (!url) return undefined;
    const timeout = this.config.notify.timeoutMs;
    this.mailer ??= nodemailer.createTransport({ url, connectionTimeout: timeout, greetingTimeout: timeout, socketTimeout: timeout });
    return this.mailer;
  }

  onModuleDestroy(): void {
    this.mailer?.close();
  }
}

function describe(error: unknown): string {
  const err = error as { code?: string; responseCode?: number; response?: string; message?: string };
  if (err?.responseCode) return `SMTP ${err.responseCode}: ${err.response ?? err.message}`;
  return err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? error);
}
