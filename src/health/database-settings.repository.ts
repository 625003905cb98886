import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

@Injectable()
export class DatabaseSettingsRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /** The statement timeout of the server connection this query ran on, in milliseconds (0: none). */
  async statementTimeoutMs(): Promise<number> {
    const rows: { ms: number }[] = await this.dataSource.query(
      `SELECT setting::int AS ms FROM pg_settings WHERE name = 'statement_timeout'`,
    );
    return rows[0].ms;
  }
}
