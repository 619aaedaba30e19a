import type { Attachment, DocumentReference } from '@medplum/fhirtypes';

/**
 * What counts as a CSV upload. One definition, read by the bot (which events it acts on), by the
 * cron sweep (which DocumentReferences it finds) and by setup (the Subscription's criteria), so the
 * three always agree.
 *
 * Browsers label a file by what the operating system says: a .csv arrives as text/csv, as
 * application/vnd.ms-excel on Windows with Excel, or as text/plain or application/csv elsewhere.
 * An attachment is a CSV upload when it has a URL (the bytes are in a Binary) and either one of
 * those content types or a title ending in ".csv", whatever its type. Only DocumentReferences with
 * status `current` are uploads: `superseded` and `entered-in-error` ones are withdrawn.
 */
export const CSV_CONTENT_TYPES = ['text/csv', 'application/vnd.ms-excel', 'text/plain', 'application/csv'] as const;

/**
 * The two tests, as regular expressions on the lower-cased value, written so that JavaScript and
 * Medplum's FHIRPath `matches()` read them the same way: a content type may carry parameters
 * ("text/csv; charset=utf-8"), a title may end in spaces.
 */
const CONTENT_TYPE_PATTERN = `^ *(${CSV_CONTENT_TYPES.map((t) => t.replaceAll('.', '[.]')).join('|')}) *(;.*)?$`;
const TITLE_PATTERN = '[.]csv *$';

export function isCsvAttachment(attachment: Attachment | undefined): boolean {
  if (!attachment?.url) {
    return false;
  }
  const type = attachment.contentType?.toLowerCase() ?? '';
  const title = attachment.title?.toLowerCase() ?? '';
  return new RegExp(CONTENT_TYPE_PATTERN).test(type) || new RegExp(TITLE_PATTERN).test(title);
}

/** Every CSV attachment of an active upload, in document order; empty for anything else. */
export function csvAttachments(doc: DocumentReference): Attachment[] {
  if (doc.status !== 'current') {
    return [];
  }
  return (doc.content ?? []).map((c) => c.attachment).filter(isCsvAttachment);
}

/** Subscription criteria for uploads: every DocumentReference, narrowed by the FHIRPath below. */
export const UPLOAD_SUBSCRIPTION_CRITERIA = 'DocumentReference';

/**
 * The same rule as `csvAttachments`, as a FHIRPath expression for Medplum's
 * `fhir-path-criteria-expression` Subscription extension (evaluated on the changed resource).
 * A search criterion cannot say "this content type OR a title ending in .csv".
 */
export const UPLOAD_FHIRPATH_CRITERIA =
  "%current.status = 'current' and %current.content.attachment.where(url.exists() and (" +
  `contentType.lower().matches('${CONTENT_TYPE_PATTERN}') or title.lower().matches('${TITLE_PATTERN}')` +
  ')).exists()';

export const FHIRPATH_CRITERIA_EXTENSION = 'https://medplum.com/fhir/StructureDefinition/fhir-path-criteria-expression';
