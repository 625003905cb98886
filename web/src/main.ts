import { ApiCatalog, ApiError, BudgetApi } from './api';
import { budgetPage } from './budget-page';
import type { DashboardContext } from './context';
import { h } from './dom';
import { problemSentence } from './problems';
import { treePage } from './tree-page';

/** The key lives in this tab's sessionStorage only: never a cookie, never localStorage. */
const KEY_ITEM = 'relaycore.apiKey';

const main = document.getElementById('main') as HTMLElement;
const who = document.getElementById('who') as HTMLElement;
let context: DashboardContext | undefined;

function signOut(message?: string): void {
  sessionStorage.removeItem(KEY_ITEM);
  context = undefined;
  showSignIn(message);
}

async function signIn(key: string): Promise<void> {
  const api = new BudgetApi(key);
  const [session, catalog] = await Promise.all([api.session(), ApiCatalog.load()]);
  sessionStorage.setItem(KEY_ITEM, key);
  context = { api, session, catalog, signOut };
  who.replaceChildren(
    h('span', { 'data-testid': 'signed-in-as' }, `${session.name} (${session.role})`),
    h('button', { type: 'button', class: 'secondary', onclick: () => signOut() }, 'Sign out'),
  );
}

function showSignIn(message?: string): void {
  who.replaceChildren();
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const error = h('div', { 'aria-live': 'polite' }, message ? h('p', { class: 'error', role: 'alert' }, message) : '');
  const form = h(
    'form',
    {
      class: 'sign-in',
      onsubmit: async (event) => {
        event.preventDefault();
        const button = form.querySelector('button') as HTMLButtonElement;
        button.disabled = true;
        try {
          await signIn(input.value.trim());
          await route();
        } catch (failure) {
          const problem = failure instanceof ApiError ? failure.problem : { status: 0 };
          const retry = failure instanceof ApiError ? failure.retryAfterSeconds : undefined;
          error.replaceChildren(h('p', { class: 'error', role: 'alert' }, problemSentence(problem, { action: 'sign in', retryAfterSeconds: retry })));
          button.disabled = false;
        }
      },
    },
    h('label', { for: 'api-key' }, 'API key'),
    input,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  main.replaceChildren(
    h('h1', {}, 'Sign in'),
    h('p', {}, 'Paste an API key of this service. It stays in this browser tab only (sessionStorage) and is sent with each request as a Bearer token.'),
    form,
    error,
  );
  input.focus();
}

/**
 * Each page draws into a view of its own: once the person navigated on or was signed out (a 401),
 * what a slower answer draws lands in a detached view, not over the page now shown.
 */
async function route(): Promise<void> {
  if (!context) return showSignIn();
  const view = h('div');
  main.replaceChildren(view);
  const budget = /^#\/budgets\/([^/]+)$/.exec(location.hash);
  const drawn = budget ? budgetPage(view, context, decodeURIComponent(budget[1])) : treePage(view, context);
  main.focus();
  await drawn;
}

window.addEventListener('hashchange', () => void route());

async function start(): Promise<void> {
  const key = sessionStorage.getItem(KEY_ITEM);
  if (!key) return showSignIn();
  try {
    await signIn(key);
  } catch (failure) {
    const problem = failure instanceof ApiError ? failure.problem : { status: 0 };
    return signOut(problemSentence(problem, { action: 'sign in' }));
  }
  await route();
}

void start();
