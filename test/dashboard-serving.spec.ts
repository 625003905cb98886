import { buildDashboard } from './setup/dashboard';
import { expectProblem } from './setup/problem';
import { createTestApp, type TestApp } from './setup/test-app';

/** /dashboard as the service serves it (SPEC §16): plain files of this origin under the same CSP, and the session call it signs in with. */
let t: TestApp;

beforeAll(async () => {
  buildDashboard();
  t = await createTestApp({ defaultKey: 'none' });
});
afterAll(() => t?.close());

describe('GET /dashboard', () => {
  it('redirects /dashboard to /dashboard/ (the page loads its files relative to it)', async () => {
    const res = await t.request('GET', '/dashboard');
    expect([301, 302]).toContain(res.status);
    expect(res.headers.location).toBe('/dashboard/');
  });

  it('serves the page with no key, under the same CSP as Swagger UI, and with no inline script', async () => {
    const page = await t.request('GET', '/dashboard/');
    const docs = await t.request('GET', '/docs');
    expect(page.status).toBe(200);
    expect(String(page.headers['content-type'])).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toBe(docs.headers['content-security-policy']);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const html = String(page.body);
    expect(html).toContain('<script type="module" src="app.js"></script>');
    // Every <script> has a src: the CSP (script-src 'self') would refuse an inline one.
    expect(html.match(/<script\b[^>]*>/g)).toEqual(['<script type="module" src="app.js">']);
    expect(html).not.toMatch(/\son[a-z]+=/i);
  });

  it('serves the bundle and the style sheet with their types; an unknown file is a 404', async () => {
    const script = await t.request('GET', '/dashboard/app.js');
    expect(script.status).toBe(200);
    expect(String(script.headers['content-type'])).toMatch(/javascript/);
    expect(String(script.body)).toContain('sessionStorage');
    const css = await t.request('GET', '/dashboard/app.css');
    expect(css.status).toBe(200);
    expect(String(css.headers['content-type'])).toMatch(/^text\/css/);
    expect((await t.request('GET', '/dashboard/nothing-here.js')).status).toBe(404);
    expect((await t.request('GET', '/dashboard/../package.json')).status).not.toBe(200);
  });

  it('keeps the key out of cookies and localStorage: the bundle stores it in sessionStorage only', async () => {
    const script = String((await t.request('GET', '/dashboard/app.js')).body);
    expect(script).not.toMatch(/localStorage|document\.cookie/);
  });
});

describe('the API beside the mounted dashboard', () => {
  it('still answers body errors (found before any route runs) as problem+json', async () => {
    const headers = { authorization: `Bearer ${t.keys.admin}` };
    const malformed = await t.request('POST', '/api/v1/budgets', '{"name":', { ...headers, 'content-type': 'application/json' });
    expectProblem(malformed, 400);
    expect(malformed.body.code).toBe('MALFORMED_JSON');
    expectProblem(await t.request('POST', '/api/v1/budgets', 'name=x', { ...headers, 'content-type': 'application/x-www-form-urlencoded' }), 415);
    expectProblem(await t.request('GET', '/api/v1/no-such-route', undefined, headers), 404);
  });
});

describe('GET /api/v1/session', () => {
  it.each(['viewer', 'service', 'admin'] as const)('names a %s key and its role', async (role) => {
    const res = await t.request('GET', '/api/v1/session', undefined, { authorization: `Bearer ${t.keys[role]}` });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ name: `test-${role}`, role });
  });

  it('answers 401 problem+json without a key, and with an unknown one', async () => {
    expectProblem(await t.request('GET', '/api/v1/session'), 401);
    expectProblem(await t.request('GET', '/api/v1/session', undefined, { 'x-api-key': `rcb_${'B'.repeat(43)}` }), 401);
  });
});
