/** Emitted for each statement that read the contexts of several checks (CheckContextGroups). */
export const CHECK_GROUP_READ = 'check.group.read';

export interface CheckGroupRead {
  /** Checks in the statement. */
  size: number;
  /** Of them, those read again alone (a chain to refresh, an unknown budget, a refused statement). */
  readAgain: number;
}
