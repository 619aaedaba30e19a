/**
 * The source ids (row keys) seen in a file, to reject repeats, in about 20 bytes per id whatever its length:
 * a million-row import must not hold a million strings. Ids are kept as two 32-bit hashes of the
 * lower-cased id (servers may match identifiers regardless of case) plus a hash of the exact
 * spelling and the row, in an open-addressing table. Two different ids share both case-folded
 * hashes with a chance around 1 in 10^10 at a million rows.
 */
/** Where an id was first seen, and how the repeat compares with it. */
export interface FirstSeen {
  row: number;
  sameSpelling: boolean;
  /** Same spelling and the same content (hash of the row's cells): an exact repeat of the row. */
  sameContent: boolean;
}

export class IdRegistry {
  private keysA: Uint32Array;
  private keysB: Uint32Array;
  private spellings: Uint32Array;
  /** A hash of the first row's content (the caller's), to tell an exact repeat of a row from a clash of ids. */
  private contents: Uint32Array;
  /** Row number + 1; 0 marks a free slot. */
  private rows: Int32Array;
  private count = 0;

  private readonly foldCase: boolean;

  /**
   * `expected`: how many ids are coming, when known (sized once instead of grown repeatedly).
   * `foldCase` (default true): ids that differ only in case are the same id.
   */
  constructor(expected = 0, options: { foldCase?: boolean } = {}) {
    let size = 1024;
    while (size < expected * 2 + 2) {
      size *= 2;
    }
    this.foldCase = options.foldCase ?? true;
    this.keysA = new Uint32Array(size);
    this.keysB = new Uint32Array(size);
    this.spellings = new Uint32Array(size);
    this.contents = new Uint32Array(size);
    this.rows = new Int32Array(size);
  }

  /** The row that first had this id and whether it was spelled the same, or undefined when new. */
  find(id: string): FirstSeen | undefined {
    const folded = this.fold(id);
    const slot = this.slotOf(hashA(folded), hashB(folded));
    return this.rows[slot] === 0 ? undefined : this.firstSeen(slot, id, undefined);
  }

  /** Records an id at a row; a later add of the same id keeps the first row. */
  add(id: string, row: number, content?: number): void {
    this.claim(id, row, content);
  }

  /**
   * Records the id at this row when it is new (undefined); otherwise leaves it and says where it
   * was first seen. One hashing for the check and the record: this runs for every row.
   */
  claim(id: string, row: number, content?: number): FirstSeen | undefined {
    if ((this.count + 1) * 2 > this.rows.length) {
      this.grow();
    }
    const folded = this.fold(id);
    const a = hashA(folded);
    const b = hashB(folded);
    const slot = this.slotOf(a, b);
    if (this.rows[slot] !== 0) {
      return this.firstSeen(slot, id, content);
    }
    this.keysA[slot] = a;
    this.keysB[slot] = b;
    this.spellings[slot] = hashA(id);
    this.contents[slot] = content ?? 0;
    this.rows[slot] = row + 1;
    this.count++;
    return undefined;
  }

  private fold(id: string): string {
    return this.foldCase ? id.toLowerCase() : id;
  }

  private firstSeen(slot: number, id: string, content: number | undefined): FirstSeen {
    return {
      row: this.rows[slot] - 1,
      sameSpelling: this.spellings[slot] === hashA(id),
      sameContent: content !== undefined && this.spellings[slot] === hashA(id) && this.contents[slot] === content,
    };
  }

  private slotOf(a: number, b: number): number {
    const mask = this.rows.length - 1;
    let slot = a & mask;
    while (this.rows[slot] !== 0 && (this.keysA[slot] !== a || this.keysB[slot] !== b)) {
      slot = (slot + 1) & mask;
    }
    return slot;
  }

  private grow(): void {
    const { keysA, keysB, spellings, contents, rows } = this;
    const size = rows.length * 2;
    this.keysA = new Uint32Array(size);
    this.keysB = new Uint32Array(size);
    this.spellings = new Uint32Array(size);
    this.contents = new Uint32Array(size);
    this.rows = new Int32Array(size);
    for (let i = 0; i < rows.length; i++) {
      if (rows[i] !== 0) {
        const slot = this.slotOf(keysA[i], keysB[i]);
        this.keysA[slot] = keysA[i];
        this.keysB[slot] = keysB[i];
        this.spellings[slot] = spellings[i];
        this.contents[slot] = contents[i];
        this.rows[slot] = rows[i];
      }
    }
  }
}

/** FNV-1a, 32 bits. */
export function hashA(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193);
  }
  return hash >>> 0;
}

/** A second, independent 32-bit hash (murmur-style mixing), so a pair of keys is 64 bits. */
export function hashB(text: string): number {
  let hash = 0x9747b28c ^ text.length;
  for (let i = 0; i < text.length; i++) {
    hash = Math.imul(hash ^ text.charCodeAt(i), 0x5bd1e995);
    hash ^= hash >>> 13;
  }
  hash = Math.imul(hash ^ (hash >>> 15), 0x27d4eb2d);
  return (hash ^ (hash >>> 16)) >>> 0;
}
