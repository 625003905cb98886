import type { Budget, TreeNode } from './api';
import { failure, type DashboardContext } from './context';
import { h } from './dom';
import { money } from './format';
import { statusBar } from './status-bar';

const SCOPE_TYPES = ['organization', 'team', 'user', 'project', 'customer'] as const;

/**
 * The roots of every budget tree with their subtrees and statuses: the roots come from the list
 * of budgets, each root scope's hierarchy brings its subtree with every node's status.
 */
async function loadForest(context: DashboardContext): Promise<TreeNode[]> {
  const budgets = await context.api.listAllBudgets();
  const roots = budgets.filter((budget: Budget) => !budget.parentId);
  const scopes = new Map(roots.map((root) => [`${root.scopeType}/${root.scopeId}`, root]));
  const hierarchies = await Promise.all([...scopes.values()].map((root) => context.api.hierarchy(root.scopeType, root.scopeId)));
  const forest = new Map<string, TreeNode>();
  for (const hierarchy of hierarchies) {
    for (const family of hierarchy.budgets) if (!family.subtree.parentId) forest.set(family.subtree.id, family.subtree);
  }
  return [...forest.values()].sort((a, b) => a.name.localeCompare(b.name));
}

interface Filter {
  text: string;
  scope: string;
}

const matches = (node: TreeNode, filter: Filter) =>
  (!filter.scope || node.scopeType === filter.scope) &&
  (!filter.text || `${node.name} ${node.scopeId}`.toLowerCase().includes(filter.text.toLowerCase()));

/** A node is shown when it matches or a descendant does (so a match keeps its ancestors as context). */
function renderNode(node: TreeNode, filter: Filter): HTMLElement | undefined {
  const children = (node.children ?? []).map((child) => renderNode(child, filter)).filter((item): item is HTMLElement => !!item);
  if (!matches(node, filter) && children.length === 0) return undefined;
  const status = node.status;
  return h(
    'li',
    { 'data-testid': 'tree-node', 'data-budget-id': node.id },
    h(
      'div',
      { class: 'node' },
      h(
        'div',
        { class: 'node-title' },
        h('a', { href: `#/budgets/${node.id}` }, node.name),
        h('span', { class: 'scope' }, `${node.scopeType} · ${node.scopeId}`),
      ),
      h(
        'div',
        { class: 'node-figures' },
        h('span', { class: 'amounts' }, status ? `${money(status.currentAmount, node.currency)} of ${money(node.amount, node.currency)}` : money(node.amount, node.currency)),
        statusBar(node.id, node.name, status),
      ),
    ),
    children.length ? h('ul', {}, children) : null,
  );
}

export async function treePage(view: HTMLElement, context: DashboardContext): Promise<void> {
  view.replaceChildren(h('h1', {}, 'Budgets'), h('p', { class: 'muted', role: 'status' }, 'Loading budgets…'));
  let forest: TreeNode[];
  try {
    forest = await loadForest(context);
  } catch (error) {
    view.replaceChildren(h('h1', {}, 'Budgets'), failure(context, error, 'load the budgets'));
    return;
  }
  const filter: Filter = { text: '', scope: '' };
  const list = h('ul', { class: 'tree', 'aria-label': 'Budget tree' });
  const count = h('p', { class: 'muted', role: 'status' });
  const render = () => {
    const items = forest.map((root) => renderNode(root, filter)).filter((item): item is HTMLElement => !!item);
    list.replaceChildren(...items);
    count.textContent = forest.length === 0 ? 'No budgets yet: an admin creates them with POST /api/v1/budgets.' : items.length === 0 ? 'No budget matches.' : '';
  };
  const search = h('input', {
    id: 'search',
    type: 'search',
    placeholder: 'Name or scope id',
    oninput: (event) => {
      filter.text = (event.target as HTMLInputElement).value.trim();
      render();
    },
  });
  const scope = h(
    'select',
    {
      id: 'scope',
      onchange: (event) => {
        filter.scope = (event.target as HTMLSelectElement).value;
        render();
      },
    },
    h('option', { value: '' }, 'All scopes'),
    SCOPE_TYPES.map((type) => h('option', { value: type }, type)),
  );
  view.replaceChildren(
    h('h1', {}, 'Budgets'),
    h(
      'div',
      { class: 'toolbar', role: 'search' },
      h('div', { class: 'field' }, h('label', { for: 'search' }, 'Search'), search),
      h('div', { class: 'field' }, h('label', { for: 'scope' }, 'Scope'), scope),
    ),
    count,
    list,
  );
  render();
}
