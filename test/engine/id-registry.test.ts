import { describe, expect, it } from 'vitest';
import { IdRegistry } from '../../src/lib/engine/id-registry';

describe('IdRegistry', () => {
  it('finds repeats regardless of case, keeps the first row, and tells a different spelling', () => {
    const ids = new IdRegistry();
    expect(ids.find('P001')).toBeUndefined();
    ids.add('P001', 2);
    ids.add('P001', 9);
    expect(ids.find('P001')).toEqual({ row: 2, sameSpelling: true, sameContent: false });
    expect(ids.find('p001')).toEqual({ row: 2, sameSpelling: false, sameContent: false });
    expect(ids.find('P002')).toBeUndefined();
  });

  it('claims an id once: new the first time, then the first row whatever the spelling', () => {
    const ids = new IdRegistry(3);
    expect(ids.claim('P001', 2)).toBeUndefined();
    expect(ids.claim('P001', 5)).toEqual({ row: 2, sameSpelling: true, sameContent: false });
    expect(ids.claim('p001', 6)).toEqual({ row: 2, sameSpelling: false, sameContent: false });
    expect(ids.claim('P002', 7)).toBeUndefined();
  });

  it.each([
    ['grown from the default size', 0],
    ['sized up front', 300_000],
  ])('holds 300,000 ids without false repeats (%s)', (_label, expected) => {
    const ids = new IdRegistry(expected);
    for (let i = 0; i < 300_000; i++) {
      ids.add(`G${i.toString().padStart(7, '0')}`, i + 2);
    }
    let found = 0;
    for (let i = 0; i < 300_000; i++) {
      found += ids.find(`G${i.toString().padStart(7, '0')}`)?.row === i + 2 ? 1 : 0;
    }
    expect(found).toBe(300_000);
    let falseRepeats = 0;
    for (let i = 300_000; i < 600_000; i++) {
      falseRepeats += ids.find(`G${i.toString().padStart(7, '0')}`) ? 1 : 0;
    }
    expect(falseRepeats).toBe(0);
  });
});
