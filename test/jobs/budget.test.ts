import { describe, expect, it } from 'vitest';
import { continuesImports, DEFAULT_PARENT_WAIT_MINUTES, parentWaitMs, timeBudgetMs } from '../../src/lib/jobs/budget';

const secret = (name: string, valueString: string) => ({ [name]: { name, valueString } });

describe('time budget and job settings', () => {
  it('is 60% of the bot timeout, the TIME_BUDGET_SECONDS secret when set, and never under 2 s', () => {
    expect(timeBudgetMs({}, undefined)).toBe(6000);
    expect(timeBudgetMs({}, { resourceType: 'Bot', timeout: 60 })).toBe(36_000);
    expect(timeBudgetMs({}, { resourceType: 'Bot', timeout: 1 })).toBe(2000);
    expect(timeBudgetMs(secret('TIME_BUDGET_SECONDS', '5'), { resourceType: 'Bot', timeout: 60 })).toBe(5000);
    expect(timeBudgetMs(secret('TIME_BUDGET_SECONDS', 'soon'), { resourceType: 'Bot', timeout: 60 })).toBe(36_000);
  });

  it('rows wait for their parents PARENT_WAIT_MINUTES (default 15); imports continue unless CONTINUE_IMPORTS says no', () => {
    expect(parentWaitMs({})).toBe(DEFAULT_PARENT_WAIT_MINUTES * 60_000);
    expect(parentWaitMs(secret('PARENT_WAIT_MINUTES', '2'))).toBe(120_000);
    expect(parentWaitMs(secret('PARENT_WAIT_MINUTES', '0'))).toBe(0);
    expect(parentWaitMs(secret('PARENT_WAIT_MINUTES', 'a while'))).toBe(DEFAULT_PARENT_WAIT_MINUTES * 60_000);
    expect(continuesImports({})).toBe(true);
    for (const no of ['false', 'No', '0', ' off ']) {
      expect(continuesImports(secret('CONTINUE_IMPORTS', no)), no).toBe(false);
    }
    expect(continuesImports(secret('CONTINUE_IMPORTS', 'true'))).toBe(true);
  });
});
