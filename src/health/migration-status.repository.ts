import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { DataSource } from 'typeorm';

const UNDEFINED_TABLE = '42P01';

@Injectable()
export class MigrationStatusRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  /**
   * Names of the migrations this build knows that the database has not applied. One SELECT:
   * TypeORM's showMigrations() would also print every pending name on each probe.
   */
  async pending(): Promise<string[]> {
    const known = this.dataSource.migrations.map((migration) => migration.name ?? migration.constructor.name);
    const table = this.dataSource.options.migrationsTableName ?? 'migrations';
    try {
      const rows: { name: string }[] = await this.dataSource.query(`SELECT name FROM "${table}"`);
      const applied = new Set(rows.map((row) => row.name));
      return known.filter((name) => !applied.has(name));
    } catch (error) {
      if ((error as { code?: string }).code === UNDEFINED_TABLE) return known;
      throw error;
    }
  }
}
