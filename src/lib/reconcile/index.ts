export type {
  DuplicateIdentity,
  ExtraResource,
  MissingResource,
  ReconcileList,
  ReconcileOptions,
  ReconcileReport,
  SystemCheck,
  UnresolvedReference,
} from './reconcile';
export { DEFAULT_MAX_LISTED, isReconciled, reconcileFile } from './reconcile';
