import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { ApiKeyService } from '../src/auth/api-key.service';
import { describeInChromium, launchChromium, seriousViolations, signIn, watchPage } from './setup/chromium';
import { buildDashboard } from './setup/dashboard';
import { createTestApp, type TestApp } from './setup/test-app';

/**
 * The dashboard in real headless Chromium (SPEC §16): sign in with a pasted key, the tree of a
 * seeded organization → team → user hierarchy with every progress bar as wide as the API's
 * percentUsed, a budget page with its chart and alerts, acknowledging an alert; at 1280×800 and
 * 390×844, with axe-core on every page (no serious or critical violation) and no console error
 * or failed request. Screenshots go to test-artifacts/ (ignored by git).
 */

const ARTIFACTS = join(__dirname, '..', 'test-artifacts');
const VIEWPORTS = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

let t: TestApp;
let browser: Browser;
const ids: Record<string, string> = {};

async function createBudget(key: string, body: Record<string, unknown>): Promise<string> {
  const res = await t.request('POST', '/api/v1/budgets', { currency: 'USD', period: 'monthly', startDate: '2025-01-01T00:00:00Z', ...body });
  expect(res.status).toBe(201);
  ids[key] = res.body.id;
  return res.body.id;
}

/**
 * `daysAgo` days before now, but inside the current window (the budgets are monthly from
 * 2025-01-01 UTC, so their windows are calendar months): the chart shows a burn over days, and the
 * totals hold on any date.
 */
function withinThisWindow(daysAgo: number): string {
  const now = new Date();
  const windowStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
  return new Date(Math.max(windowStart + 60_000, now.getTime() - daysAgo * 86_400_000)).toISOString();
}

async function spend(key: string, amount: number, daysAgo: number, modelId = 'gpt-4o', userId?: string): Promise<void> {
  const res = await t.request('POST', `/api/v1/budgets/${ids[key]}/usage`, {
    amount,
    currency: 'USD',
    modelId,
    source: 'relaycore',
    userId,
    occurredAt: withinThisWindow(daysAgo),
  });
  expect(res.status).toBe(201);
}

/** organization → two teams → two users, in every status: normal, warning (with two fired alerts), critical, exceeded. */
async function seed(): Promise<void> {
  const org = await createBudget('org', { name: 'Acme AI', scopeType: 'organization', scopeId: 'acme', amount: 1000 });
  const platform = await createBudget('platform', {
    name: 'Platform team',
    scopeType: 'team',
    scopeId: 'platform',
    parentId: org,
    amount: 400,
    alerts: [
      { threshold: 50, actions: ['notify'], notificationChannels: ['email'] },
      { threshold: 70, actions: ['notify'], notificationChannels: ['email'] },
    ],
  });
  await createBudget('research', { name: 'Research team', scopeType: 'team', scopeId: 'research', parentId: org, amount: 200 });
  await createBudget('alice', { name: 'Alice', scopeType: 'user', scopeId: 'alice', parentId: platform, amount: 100 });
  await createBudget('bob', { name: 'Bob', scopeType: 'user', scopeId: 'bob', parentId: platform, amount: 100, enforcement: 'soft' });
  await spend('alice', 30, 9, 'gpt-4o-mini', 'alice');
  await spend('bob', 120, 7, 'gpt-4o', 'bob');
  await spend('platform', 60, 5, 'claude-sonnet-4');
  await spend('platform', 70, 2, 'claude-sonnet-4');
  await spend('platform', 20, 0, 'claude-sonnet-4');
  await spend('research', 185, 4, 'o3');
}

beforeAll(async () => {
  buildDashboard();
  t = await createTestApp({ listen: true });
  await seed();
  browser = (await launchChromium())!;
  mkdirSync(ARTIFACTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describeInChromium('the dashboard in Chromium', () => {
  describe.each(VIEWPORTS)('at $width×$height', (viewport) => {
    let page: Page;
    let problems: string[];

    beforeAll(async () => {
      const context = await browser.newContext({ viewport: { width: viewport.width, height: viewport.height } });
      page = await context.newPage();
      problems = watchPage(page);
    });
    afterAll(() => page?.context().close());

    it('signs in with a service key and shows the tree, every bar as wide as the API says', async () => {
      await signIn(page, t.baseUrl!, t.keys.service);
      await expect(page.getByTestId('signed-in-as').textContent()).resolves.toBe('test-service (service)');
      const nodes = page.getByTestId('tree-node');
      await nodes.nth(4).waitFor();
      expect(await nodes.count()).toBe(5);
      // The tree's shape: the organization holds the teams, Platform holds the users.
      const linksUnder = (key: string) => page.locator(`[data-testid=tree-node][data-budget-id="${ids[key]}"]`).getByRole('link').allTextContents();
      await expect(linksUnder('org')).resolves.toEqual(['Acme AI', 'Platform team', 'Alice', 'Bob', 'Research team']);
      await expect(linksUnder('platform')).resolves.toEqual(['Platform team', 'Alice', 'Bob']);

      const bars = page.getByRole('progressbar');
      expect(await bars.count()).toBe(5);
      const statuses = new Map<string, string>();
      for (const bar of await bars.all()) {
        const budgetId = (await bar.getAttribute('data-budget-id'))!;
        const status = (await t.request('GET', `/api/v1/budgets/${budgetId}/status`)).body;
        const track = (await bar.boundingBox())!;
        const fill = (await bar.locator('.fill').boundingBox())!;
        expect(Math.abs(fill.width - (track.width * Math.min(status.percentUsed, 100)) / 100)).toBeLessThan(1);
        await expect(bar.locator('.fill').getAttribute('class')).resolves.toContain(`status-${status.status}`);
        statuses.set(budgetId, status.status);
      }
      expect(Object.fromEntries(Object.entries(ids).map(([key, id]) => [key, statuses.get(id)]))).toEqual({
        org: 'normal',
        platform: 'warning',
        research: 'critical',
        alice: 'normal',
        bob: 'exceeded',
      });
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `dashboard-tree-${viewport.width}x${viewport.height}.png`), fullPage: true });
    });

    it('filters the tree by search text and by scope', async () => {
      await page.getByLabel('Search', { exact: true }).fill('bob');
      await expect(page.getByTestId('tree-node').getByRole('link').allTextContents()).resolves.toEqual(['Acme AI', 'Platform team', 'Bob']);
      await page.getByLabel('Search', { exact: true }).fill('');
      await page.getByLabel('Scope', { exact: true }).selectOption('team');
      await expect(page.getByTestId('tree-node').getByRole('link').allTextContents()).resolves.toEqual(['Acme AI', 'Platform team', 'Research team']);
      await page.getByLabel('Scope', { exact: true }).selectOption('');
    });

    it('opens a budget: the window chart against the limit, alerts, recent usage; acknowledges an alert', async () => {
      await page.getByRole('link', { name: 'Platform team', exact: true }).click();
      await page.getByRole('heading', { level: 1, name: 'Platform team' }).waitFor();
      await page.getByTestId('spend-chart').waitFor();
      await page.getByTestId('alert-row').nth(1).waitFor();
      await expect(page.getByTestId('spend-chart').locator('desc').textContent()).resolves.toContain('Spent $300.00 of $400.00');
      // The forecast band and the deliveries are drawn when the service has those operations, else a note (no failed request).
      const operations = (await t.request('GET', '/docs-json')).body.paths as Record<string, unknown>;
      if (operations['/api/v1/budgets/{id}/forecast']) {
        await page.getByTestId('forecast-band-95').waitFor();
        await expect(page.getByTestId('forecast-note').textContent()).resolves.toMatch(/^Forecast \$/);
      } else {
        await expect(page.getByTestId('forecast-note').textContent()).resolves.toMatch(/Forecast not available/);
      }
      const deliveries = page.getByTestId('deliveries').locator('table, [data-testid=deliveries-note]');
      await deliveries.waitFor();
      if (!operations['/api/v1/notification-deliveries']) await expect(deliveries.textContent()).resolves.toMatch(/not available/);
      const usageRows = page.getByRole('region', { name: 'Recent usage' }).locator('tbody tr');
      expect(await usageRows.count()).toBe(5);
      expect(await seriousViolations(page)).toEqual([]);
      await page.screenshot({ path: join(ARTIFACTS, `dashboard-budget-${viewport.width}x${viewport.height}.png`), fullPage: true });

      const open = page.getByTestId('alert-row').filter({ has: page.getByRole('button', { name: /Acknowledge/ }) });
      const before = await open.count();
      expect(before).toBeGreaterThan(0);
      const alertId = (await open.first().getAttribute('data-alert-id'))!;
      await open.first().getByRole('button', { name: /Acknowledge/ }).click();
      await page.getByText(/alert is acknowledged/).waitFor();
      await expect(page.locator(`[data-alert-id="${alertId}"]`).textContent()).resolves.toContain('Acknowledged by test-service');
      expect(await open.count()).toBe(before - 1);
      const alerts = (await t.request('GET', `/api/v1/budgets/${ids.platform}/alerts`)).body as { id: string; acknowledgedBy: string | null }[];
      expect(alerts.find((alert) => alert.id === alertId)?.acknowledgedBy).toBe('test-service');
      expect(await seriousViolations(page)).toEqual([]);
    });

    it('saw no console error and no failed request', () => {
      expect(problems).toEqual([]);
    });
  });

  it('a viewer key sees the alerts without an Acknowledge button, and is told why', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = watchPage(page);
    await signIn(page, t.baseUrl!, t.keys.viewer);
    await page.getByRole('link', { name: 'Platform team', exact: true }).click();
    await page.getByTestId('alert-row').nth(1).waitFor();
    expect(await page.getByRole('button', { name: /Acknowledge/ }).count()).toBe(0);
    await expect(page.getByTestId('role-note').textContent()).resolves.toMatch(/needs a service or admin key; you are signed in with a viewer key/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('a wrong key is refused with a sentence, and the key is kept in sessionStorage only', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    // The 401 is the point of this test: Chromium logs it as a failed resource.
    const problems = watchPage(page, [/401/]);
    await signIn(page, t.baseUrl!, `rcb_${'C'.repeat(43)}`);
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/This API key was not accepted/);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await seriousViolations(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-sign-in-390x844.png'), fullPage: true });
    await page.getByLabel('API key').fill(t.keys.admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('tree-node').first().waitFor();
    const storage = await page.evaluate(() => ({ session: sessionStorage.getItem('relaycore.apiKey'), local: localStorage.length, cookie: document.cookie }));
    expect(storage).toEqual({ session: t.keys.admin, local: 0, cookie: '' });
    // A reload keeps the tab signed in; signing out forgets the key.
    await page.reload();
    await page.getByTestId('tree-node').first().waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key').waitFor();
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('a key revoked while signed in: the next page signs out and says why', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const problems = watchPage(page, [/401/]);
    const key = await t.createKey('viewer', 'dashboard-revoked');
    await signIn(page, t.baseUrl!, key.key);
    await page.getByTestId('tree-node').first().waitFor();
    await t.app.get(ApiKeyService).revokeKey(key.id, 'dashboard-browser-spec');
    await page.getByRole('link', { name: 'Research team', exact: true }).click();
    await page.getByLabel('API key').waitFor();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(/This API key was not accepted/);
    // What the budget page would have drawn after the 401 does not cover the sign-in form.
    await page.waitForTimeout(300);
    expect(await page.getByRole('heading', { level: 1 }).allTextContents()).toEqual(['Sign in']);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(problems).toEqual([]);
    await page.close();
  });
});
