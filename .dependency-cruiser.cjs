/**
 * The one-way doors of STYLE.md and /architecture.json, as dependency-cruiser rules.
 * test/dependency-rules.spec.ts runs them inside `npm test`; by hand:
 *   npx depcruise src migrations ormconfig.ts --config .dependency-cruiser.cjs
 *   npx depcruise src --config .dependency-cruiser.cjs --include-only '^src' --collapse '^src/[^/]+' --output-type text
 *
 * Rooms, highest first. Imports point down only; a room may import the rooms listed in its
 * `mayImport` and nothing else of src/:
 *
 *   Entry            main.ts, app.module.ts, app.setup.ts, types/          → anything
 *   Ops              health/, cli/, demo/, dashboard/                       → any room below Entry
 *                    (cli/ and demo/ start the app themselves, so they may also use Entry)
 *   Reporting        reporting/                                            → constraint, usage, budget, auth, floor
 *   Notification     notification/                                         → budget, auth, floor
 *   Constraint       constraint/                                           → usage, pricing, budget, auth, floor
 *   Usage            usage/                                                → pricing, budget, auth, floor
 *   Pricing          pricing/                                              → auth, floor
 *   Budget           budget/                                               → auth, floor
 *   Auth             auth/                                                 → floor
 *   Observability    observability/                                        → floor, and other rooms' events
 *   Common           common/, config/                                      → common, config, database
 *   Database         database/, migrations/, ormconfig.ts                  → database only
 *
 * ("floor" = common/, config/, database/.) Observability and Notification listen to what the
 * feature rooms announce: besides their own list they may import a room's `*.events.ts` (event
 * names and payload types), never its services. No feature room imports Observability: metrics
 * and logs watch the features, not the other way round.
 *
 * A room's public surface — the only files another room may import from it:
 *   *.module.ts                 the Nest module (how a room is imported)
 *   *.service.ts                the services its module exports
 *   *.types.ts, *.events.ts     its types, event names and payloads
 *   *.decorator.ts, *.guard.ts  decorators and guards meant for other rooms' controllers
 *   *.bootstrap.ts              start-up steps offered to the entry point
 *   dto/**                      request and response shapes
 *   index.ts                    a barrel, if a room wants one
 *   + the files in INTERFACE_FILES below, each meant as the room's interface
 * Everything else — repositories, entities, controllers, mappers, calculators, private helpers — is
 * internal. common/ and config/ are the shared floor: all of it is meant for use. The composition
 * roots (main.ts, app.module.ts, app.setup.ts, cli/) wire providers by hand and may name any of
 * them.
 *
 * Plus: no circular imports anywhere, and every import resolves.
 */

const FLOOR = ['common', 'database'];

/** Each room: the paths it covers, and the rooms it may import (besides itself). */
const ROOMS = {
  entry: { label: 'Entry', path: '^src/(main|app\\.module|app\\.setup)\\.ts$|^src/types/', mayImport: '*' },
  ops: {
    label: 'Ops',
    path: '^src/(health|cli|demo|dashboard)/',
    mayImport: ['reporting', 'notification', 'constraint', 'usage', 'pricing', 'budget', 'auth', 'observability', ...FLOOR],
  },
  reporting: { label: 'Reporting', path: '^src/reporting/', mayImport: ['constraint', 'usage', 'budget', 'auth', ...FLOOR] },
  notification: { label: 'Notification', path: '^src/notification/', mayImport: ['budget', 'auth', ...FLOOR] },
  constraint: { label: 'Constraint', path: '^src/constraint/', mayImport: ['usage', 'pricing', 'budget', 'auth', ...FLOOR] },
  usage: { label: 'Usage', path: '^src/usage/', mayImport: ['pricing', 'budget', 'auth', ...FLOOR] },
  // auth: its controller declares roles with @RequireRole, like every room's (README: pricing, budget → auth).
  pricing: { label: 'Pricing', path: '^src/pricing/', mayImport: ['auth', ...FLOOR] },
  budget: { label: 'Budget', path: '^src/budget/', mayImport: ['auth', ...FLOOR] },
  auth: { label: 'Auth', path: '^src/auth/', mayImport: [...FLOOR] },
  observability: { label: 'Observability', path: '^src/observability/', mayImport: [...FLOOR] },
  common: { label: 'Common', path: '^src/(common|config)/', mayImport: ['database'] },
  database: { label: 'Database', path: '^src/database/|^migrations/|^ormconfig\\.ts$', mayImport: [] },
};

/** The "never" doors of architecture.json (and its notes: "nevers once built"), with its reasons. */
const NEVER = {
  'common>budget': 'the shared floor knows no feature',
  'common>usage': 'the shared floor knows no feature',
  'common>constraint': 'the shared floor knows no feature',
  'common>notification': 'the shared floor knows no feature',
  'budget>usage': 'definitions do not depend on the ledger',
  'budget>constraint': 'definitions do not depend on decisions',
  'usage>constraint': 'the ledger does not depend on decisions',
  'usage>reporting': 'the ledger does not depend on reports',
  'usage>notification': 'the ledger does not depend on notifications',
  'constraint>reporting': 'decisions do not depend on reports',
  'pricing>usage': 'prices do not depend on the ledger',
  'pricing>budget': 'prices do not depend on budget definitions',
};

/** Rooms whose listeners may import other rooms' event names (`*.events.ts`). */
const LISTENERS = ['observability', 'notification'];
const EVENTS_FILE = '^src/[^/]+/[^/]+\\.events\\.ts$';

/** Files that are a room's interface although their names do not say so. */
const INTERFACE_FILES = [
  '^src/auth/api-key-role\\.ts$', // the roles, a type every controller's @RequireRole names
  '^src/usage/constraint-checker\\.ts$', // the port Usage owns; Constraint binds its implementation
  '^src/usage/budget-status\\.calculator\\.ts$', // the status rule (label from the exact percentage) a check also reports
  '^src/constraint/constraint-decision\\.ts$', // the pure decision ladder the what-if replay runs (not a copy)
  '^src/observability/shutdown-state\\.ts$', // the shutdown phase, read by health and the entry point
];

const PUBLIC_SURFACE = [
  '^src/[^/]+/[^/]+\\.(module|service|types|events|decorator|guard|bootstrap)\\.ts$',
  '^src/[^/]+/dto/',
  '^src/[^/]+/index\\.ts$',
  ...INTERFACE_FILES,
];
const COMPOSITION_ROOTS = ['^src/(main|app\\.module|app\\.setup)\\.ts$', '^src/cli/'];
const SHARED_FLOOR = '^src/(common|config|database|types)/';

function doorRules() {
  const rules = [];
  const names = Object.keys(ROOMS);
  for (const from of names) {
    const room = ROOMS[from];
    if (room.mayImport === '*') continue;
    for (const to of names) {
      if (to === from || room.mayImport.includes(to)) continue;
      // cli/ and demo/ are scripts that start the app: they may use the entry point.
      const fromPath = from === 'ops' && to === 'entry' ? '^src/(health|dashboard)/' : room.path;
      const never = NEVER[`${from}>${to}`];
      rules.push({
        name: `${never ? 'never' : 'down-only'}-${from}-to-${to}`,
        comment: never
          ? `${room.label} must never import ${ROOMS[to].label}: ${never} (architecture.json "never").`
          : `${room.label} may import only ${room.mayImport.join(', ') || 'itself'}: imports point down only (STYLE.md "One-way doors").`,
        severity: 'error',
        from: { path: fromPath },
        to: { path: ROOMS[to].path, ...(LISTENERS.includes(from) ? { pathNot: EVENTS_FILE } : {}) },
      });
    }
  }
  return rules;
}

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...doorRules(),
    {
      name: 'no-internals-of-another-room',
      comment:
        "A room may import another room's public surface only (see the top of .dependency-cruiser.cjs): " +
        'not its repositories, entities, controllers, mappers or helpers. Move what is shared into a *.types.ts, ' +
        '*.events.ts or dto/ file of the room that owns it.',
      severity: 'error',
      from: { path: '^src/([^/]+)/', pathNot: COMPOSITION_ROOTS },
      to: { path: '^src/[^/]+/', pathNot: ['^src/$1/', SHARED_FLOOR, ...PUBLIC_SURFACE] },
    },
    {
      name: 'no-circular',
      comment: 'A circle of imports ties its rooms into one: break it with a port owned by the lower room.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve would slip past every rule above.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // `import type` counts: a type import ties the rooms as much as a value import does.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
