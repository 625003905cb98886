import { DataSource } from 'typeorm';
import { dataSourceOptions, type DatabasePoolMode } from './data-source.options';

/** Applies pending migrations with a short-lived connection; returns the names applied. */
export async function runMigrations(url: string, poolMode: DatabasePoolMode = 'session'): Promise<string[]> {
  const dataSource = new DataSource({ ...dataSourceOptions({ url, poolSize: 2, poolMode }), logging: ['error'] });
  await dataSource.initialize();
  try {
    const applied = await dataSource.runMigrations({ transaction: 'each' });
    return applied.map((migration) => migration.name);
  } finally {
    await dataSource.destroy();
  }
}
