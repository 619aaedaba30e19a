import { describe, expect, it } from 'vitest';
import { leaseMs, timeBudgetMs } from '../../src/lib/jobs/budget';

describe('time budget', () => {
  it('is 60% of the bot timeout, the TIME_BUDGET_SECONDS secret when set, and never under 2 s', () => {
    expect(timeBudgetMs({}, undefined)).toBe(6000);
    expect(timeBudgetMs({}, { resourceType: 'Bot', timeout: 60 })).toBe(36_000);
    expect(timeBudgetMs({}, { resourceType: 'Bot', timeout: 1 })).toBe(2000);
    expect(timeBudgetMs({ TIME_BUDGET_SECONDS: { name: 'TIME_BUDGET_SECONDS', valueString: '5' } }, { resourceType: 'Bot', timeout: 60 })).toBe(5000);
    expect(leaseMs(36_000)).toBe(96_000);
  });
});
