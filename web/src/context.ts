import { ApiError, type ApiCatalog, type BudgetApi, type Session } from './api';
import { h } from './dom';
import { problemSentence } from './problems';

/** What every page gets: the signed-in key's API, who it is, what the service offers. */
export interface DashboardContext {
  api: BudgetApi;
  session: Session;
  catalog: ApiCatalog;
  /** A 401 anywhere ends the session: back to sign-in with the sentence. */
  signOut(message?: string): void;
}

/** The sentence for a failed call; a 401 signs out. */
export function failure(context: DashboardContext, error: unknown, action: string): HTMLElement {
  const problem = error instanceof ApiError ? error.problem : { status: 0 };
  const sentence = problemSentence(problem, {
    action,
    role: context.session.role,
    retryAfterSeconds: error instanceof ApiError ? error.retryAfterSeconds : undefined,
  });
  if (problem.status === 401) context.signOut(sentence);
  return h('p', { class: 'error', role: 'alert' }, sentence);
}
