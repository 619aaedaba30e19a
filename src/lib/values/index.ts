export { compileDateFormats, isAfter, isTimeZone } from './date-time';
export type { DateKind, DateReader } from './date-time';
export { DEFAULT_FALSE_VALUES, DEFAULT_TRUE_VALUES, readBoolean, readDecimal, readInteger } from './numbers';
export type { IntegerKind } from './numbers';
