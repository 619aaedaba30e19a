/**
 * Offsets of IANA time zones, from Intl (the only zone data in the bot sandbox), cached per UTC
 * day: asking Intl costs microseconds, and a large import converts a million values, most of them
 * on days it has seen before. A day holds at most one change of offset (true of every zone since
 * 1800 for practical purposes); the instant of a change is found to the second.
 */

const DAY = 86_400_000;

/** Offsets are kept per UTC day; a cache past this many days starts again (memory stays bounded). */
const MAX_CACHED_DAYS = 400_000;

/** The offset (ms, local minus UTC) for a whole day, or the day's change of offset. */
type DayOffsets = number | { readonly changeAt: number; readonly before: number; readonly after: number };

export class ZoneOffsets {
  private readonly days = new Map<number, DayOffsets>();
  private readonly atMidnight = new Map<number, number>();

  constructor(private readonly format: Intl.DateTimeFormat) {}

  /** The zone's offset at a UTC instant, in milliseconds (local minus UTC). */
  offsetAt(utc: number): number {
    const dayNumber = Math.floor(utc / DAY);
    let day = this.days.get(dayNumber);
    if (day === undefined) {
      if (this.days.size >= MAX_CACHED_DAYS) {
        this.days.clear();
        this.atMidnight.clear();
      }
      day = this.dayOffsets(dayNumber);
      this.days.set(dayNumber, day);
    }
    return typeof day === 'number' ? day : utc < day.changeAt ? day.before : day.after;
  }

  /**
   * The offset under which a wall-clock time (its fields read as if UTC, in ms) is a real
   * instant in the zone; undefined when the wall clock skips it. When it shows the time twice
   * (clocks going back), the offset of the earlier instant, which is the larger offset.
   * Any offset in force within a day of the wall-clock time is one of the offsets a day before
   * and a day after, since offsets stay within ±14h and change at most once in two days.
   */
  offsetOfWallClock(wallClock: number): number | undefined {
    const before = this.offsetAt(wallClock - DAY);
    const after = this.offsetAt(wallClock + DAY);
    const larger = before > after ? before : after;
    if (this.offsetAt(wallClock - larger) === larger) {
      return larger;
    }
    const smaller = before > after ? after : before;
    if (smaller !== larger && this.offsetAt(wallClock - smaller) === smaller) {
      return smaller;
    }
    return undefined;
  }

  private dayOffsets(dayNumber: number): DayOffsets {
    const before = this.offsetAtMidnight(dayNumber);
    const after = this.offsetAtMidnight(dayNumber + 1);
    if (before === after) {
      return before;
    }
    // Bisect, in whole seconds, for the first instant under the new offset.
    let low = (dayNumber * DAY) / 1000;
    let high = low + DAY / 1000;
    while (high - low > 1) {
      const middle = Math.floor((low + high) / 2);
      if (this.intlOffset(middle * 1000) === before) {
        low = middle;
      } else {
        high = middle;
      }
    }
    return { changeAt: high * 1000, before, after };
  }

  private offsetAtMidnight(dayNumber: number): number {
    let offset = this.atMidnight.get(dayNumber);
    if (offset === undefined) {
      offset = this.intlOffset(dayNumber * DAY);
      this.atMidnight.set(dayNumber, offset);
    }
    return offset;
  }

  /** The offset at a whole second, from the zone's wall clock as Intl shows it. */
  private intlOffset(utc: number): number {
    let year = 0;
    let month = 0;
    let day = 0;
    let hour = 0;
    let minute = 0;
    let second = 0;
    for (const part of this.format.formatToParts(utc)) {
      switch (part.type) {
        case 'year':
          year = Number(part.value);
          break;
        case 'month':
          month = Number(part.value);
          break;
        case 'day':
          day = Number(part.value);
          break;
        case 'hour':
          hour = Number(part.value);
          break;
        case 'minute':
          minute = Number(part.value);
          break;
        case 'second':
          second = Number(part.value);
          break;
        default:
          break;
      }
    }
    const wallClock = new Date(0);
    // setUTCFullYear, unlike Date.UTC, takes years 0-99 as they are.
    wallClock.setUTCFullYear(year, month - 1, day);
    wallClock.setUTCHours(hour, minute, second, 0);
    return wallClock.getTime() - utc;
  }
}

const zones = new Map<string, ZoneOffsets | null>();
let lastName: string | undefined;
let lastZone: ZoneOffsets | undefined;

/** The cached offsets of a zone by IANA name; undefined when Intl does not know the name. */
export function zoneOffsets(name: string): ZoneOffsets | undefined {
  // Consecutive cells nearly always share a zone: skip the map.
  if (name === lastName) {
    return lastZone;
  }
  let zone = zones.get(name);
  if (zone === undefined) {
    if (zones.size >= 1000) {
      zones.clear();
    }
    zone = createZoneOffsets(name);
    zones.set(name, zone);
  }
  lastName = name;
  lastZone = zone ?? undefined;
  return lastZone;
}

function createZoneOffsets(name: string): ZoneOffsets | null {
  if (name === '') {
    return null;
  }
  try {
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    return new ZoneOffsets(format);
  } catch {
    return null;
  }
}

/** Whether Intl knows the zone (an IANA name such as `Europe/Berlin`, or `UTC`). */
export function isTimeZone(name: string): boolean {
  return zoneOffsets(name) !== undefined;
}
