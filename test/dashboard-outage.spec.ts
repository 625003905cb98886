import type { Browser } from 'playwright-core';
import { describeInChromium, launchChromium, signIn, watchPage } from './setup/chromium';
import { buildDashboard } from './setup/dashboard';
import { startFaultDatabase, type FaultDatabase } from './faults.support';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * The dashboard while PostgreSQL is away, for real (SPEC §16: a 503 is a sentence a person can
 * act on): the service answers 503 with Retry-After, the page says so and when to try again,
 * and a reload once the database is back shows the budget.
 */
let db: FaultDatabase;
let t: TestApp;
let browser: Browser;
let budgetId: string;

beforeAll(async () => {
  buildDashboard();
  db = await startFaultDatabase('dashboard_outage');
  t = await createTestApp({ listen: true, databaseUrl: db.url });
  const created = await t.request('POST', '/api/v1/budgets', {
    name: 'Support team',
    scopeType: 'team',
    scopeId: 'support',
    amount: 50,
    currency: 'USD',
    period: 'monthly',
    startDate: '2025-01-01T00:00:00Z',
  });
  expect(created.status).toBe(201);
  budgetId = created.body.id;
  browser = (await launchChromium())!;
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
  await db?.destroy();
});

describeInChromium('the dashboard while the database is unreachable', () => {
  it('says the service is temporarily unavailable and when to retry; recovers on reload', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // The 503s are the point of this test: Chromium logs each as a failed resource.
    const problems = watchPage(page, [/\b503\b/]);
    await signIn(page, t.baseUrl!, t.keys.viewer);
    await page.getByRole('link', { name: 'Support team' }).waitFor();

    await db.stop();
    try {
      // The key was verified a moment ago (the service trusts it from memory for a while): the budget read is what fails.
      await page.getByRole('link', { name: 'Support team' }).click();
      const alert = page.getByRole('alert');
      await alert.waitFor();
      await expect(alert.textContent()).resolves.toMatch(
        /^The budget service is temporarily unavailable \(its database cannot be reached\), so it could not load this budget\. It recovers by itself: try again in \d+ seconds?\.$/,
      );
    } finally {
      await db.start();
    }

    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Support team' }).waitFor();
    expect(page.url()).toContain(`#/budgets/${budgetId}`);
    expect(problems).toEqual([]);
    await page.close();
  });
});
