import type { WithId } from '@medplum/core';
import { resourceMatchesSubscriptionCriteria } from '@medplum/core';
import type { Attachment, Bot, DocumentReference, Subscription } from '@medplum/fhirtypes';
import fc from 'fast-check';
import { beforeAll, describe, expect, test } from 'vitest';
import { csvAttachments } from '../../src/lib/input/uploads';
import { ensureDefinitionsIndexed } from '../../src/lib/local-medplum/definitions';
import type { SubscriptionInteraction } from '../../src/setup/upload-subscriptions';
import { SUBSCRIPTION_INTERACTIONS, wantedSubscription } from '../../src/setup/upload-subscriptions';

/**
 * The Subscriptions setup writes fire exactly for what the bot and the cron sweep call an upload
 * (`csvAttachments` in src/lib/input/uploads.ts), judged by the server's own matcher:
 * @medplum/core's `resourceMatchesSubscriptionCriteria` (search criteria, the FHIRPath criteria
 * extension with %current / %previous, and the supported-interaction extension).
 */

const BOT: WithId<Bot> = { resourceType: 'Bot', id: '0b7e6a52-1f7c-4f4e-9d43-6a3f0f1e2c11', name: 'import-csv' };
const SUBSCRIPTIONS: Record<SubscriptionInteraction, Subscription> = {
  create: wantedSubscription(BOT, 'create'),
  update: wantedSubscription(BOT, 'update'),
};

const CONTENT_TYPES = [
  'text/csv',
  'TEXT/CSV',
  'text/csv; charset=utf-8',
  'Text/CSV;charset=UTF-8',
  ' text/csv ',
  'application/vnd.ms-excel',
  'application/vnd.ms-excel; charset=windows-1252',
  'APPLICATION/VND.MS-EXCEL',
  'text/plain',
  'text/plain; charset=us-ascii',
  'application/csv',
  'application/vnd-ms-excel',
  'application/vnd.ms-excel.sheet.macroEnabled.12',
  'text/csv-schema',
  'xtext/csv',
  'text/html',
  'application/json',
  'application/pdf',
  'application/octet-stream',
  undefined,
];
const TITLES = ['patients.csv', 'PATIENTS.CSV', 'export.Csv ', 'patients.csv.bak', 'patients_csv', 'notes.txt', 'csv', undefined];
const URLS = ['Binary/6f1c0000-0000-4000-8000-000000000001', undefined];
const STATUSES: DocumentReference['status'][] = ['current', 'superseded', 'entered-in-error'];

function attachment(contentType: string | undefined, title: string | undefined, url: string | undefined): Attachment {
  return {
    ...(contentType !== undefined ? { contentType } : {}),
    ...(title !== undefined ? { title } : {}),
    ...(url !== undefined ? { url } : {}),
  };
}

function documentReference(status: DocumentReference['status'], attachments: Attachment[]): DocumentReference {
  return {
    resourceType: 'DocumentReference',
    id: '2b5a0000-0000-4000-8000-00000000000a',
    meta: { versionId: '2' },
    status,
    content: attachments.map((a) => ({ attachment: a })),
  };
}

/** Every combination of one attachment's content type, title and URL with the document status. */
function singleAttachmentDocuments(): DocumentReference[] {
  const docs: DocumentReference[] = [];
  for (const status of STATUSES) {
    for (const contentType of CONTENT_TYPES) {
      for (const title of TITLES) {
        for (const url of URLS) {
          docs.push(documentReference(status, [attachment(contentType, title, url)]));
        }
      }
    }
  }
  return docs;
}

/** Documents with several attachments, where only some would count, or none. */
function multiAttachmentDocuments(): DocumentReference[] {
  const pdf = attachment('application/pdf', 'scan.pdf', 'Binary/1');
  const csvWithoutUrl = attachment('text/csv', 'patients.csv', undefined);
  const csv = attachment('application/vnd.ms-excel', 'patients.csv', 'Binary/2');
  return [
    documentReference('current', []),
    documentReference('current', [pdf, csv]),
    documentReference('current', [csvWithoutUrl, pdf]),
    documentReference('current', [csvWithoutUrl, csv]),
    documentReference('superseded', [pdf, csv]),
    // No content at all (required by FHIR, but a server may hand it over).
    { resourceType: 'DocumentReference', id: '2b5a0000-0000-4000-8000-00000000000b', status: 'current' } as DocumentReference,
  ];
}

async function fires(interaction: SubscriptionInteraction, subscription: Subscription, doc: DocumentReference, previous?: DocumentReference): Promise<boolean> {
  return resourceMatchesSubscriptionCriteria({
    resource: doc,
    subscription,
    context: { interaction },
    getPreviousResource: async () => previous,
  });
}

/** Which of the two Subscriptions fire for this event. */
async function firing(interaction: SubscriptionInteraction | 'delete', doc: DocumentReference, previous?: DocumentReference): Promise<string[]> {
  const result: string[] = [];
  for (const [name, subscription] of Object.entries(SUBSCRIPTIONS)) {
    const matched = await resourceMatchesSubscriptionCriteria({
      resource: doc,
      subscription,
      context: { interaction },
      getPreviousResource: async () => previous,
    });
    if (matched) {
      result.push(name);
    }
  }
  return result;
}

beforeAll(() => {
  // The server matches with the full definitions indexed.
  ensureDefinitionsIndexed();
});

describe('the upload Subscriptions', () => {
  test('each fires on its interaction exactly when the DocumentReference is an upload, over every combination', async () => {
    const docs = [...singleAttachmentDocuments(), ...multiAttachmentDocuments()];
    const mismatches: string[] = [];
    let uploads = 0;
    for (const doc of docs) {
      const isUpload = csvAttachments(doc).length > 0;
      uploads += isUpload ? 1 : 0;
      for (const interaction of SUBSCRIPTION_INTERACTIONS) {
        const expected = isUpload ? [interaction] : [];
        const actual = await firing(interaction, doc, interaction === 'update' ? documentReference('current', []) : undefined);
        if (actual.join() !== expected.join()) {
          mismatches.push(`${interaction} ${JSON.stringify(doc.status)} ${JSON.stringify(doc.content)}: fired ${actual.join() || 'none'}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    // The set holds both kinds in numbers: uploads by each of the four types and by title alone.
    expect(uploads).toBeGreaterThan(100);
    expect(docs.length - uploads).toBeGreaterThan(300);
  });

  test('the labels browsers give a .csv all count, and so does a .csv title with any type', async () => {
    for (const contentType of ['text/csv', 'application/vnd.ms-excel', 'text/plain', 'application/csv']) {
      const doc = documentReference('current', [attachment(contentType, undefined, 'Binary/1')]);
      expect(await fires('create', SUBSCRIPTIONS.create, doc)).toBe(true);
    }
    const titled = documentReference('current', [attachment('application/octet-stream', 'export.csv', 'Binary/1')]);
    expect(await fires('update', SUBSCRIPTIONS.update, titled)).toBe(true);
    // The SDK's create-then-update: the create has no URL yet, the update does.
    expect(await fires('create', SUBSCRIPTIONS.create, documentReference('current', [attachment('text/csv', 'a.csv', undefined)]))).toBe(false);
  });

  test('neither fires on delete', async () => {
    const upload = documentReference('current', [attachment('text/csv', 'patients.csv', 'Binary/1')]);
    expect(await firing('delete', upload)).toEqual([]);
  });

  test('agrees with csvAttachments on arbitrary content types and titles (property)', async () => {
    const fragment = fc.constantFrom('text', 'csv', '/', '.', ';', ' ', 'CSV', 'plain', 'application', 'vnd.ms-excel', 'charset=utf-8', 'x', '-', '\t', '(', '|', '*');
    const value = fc.option(fc.array(fragment, { maxLength: 6 }).map((parts) => parts.join('')), { nil: undefined });
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...STATUSES),
        fc.array(fc.record({ contentType: value, title: value, url: fc.option(fc.constant('Binary/1'), { nil: undefined }) }), { maxLength: 3 }),
        fc.constantFrom(...SUBSCRIPTION_INTERACTIONS),
        async (status, parts, interaction) => {
          // FHIR has no empty strings: an empty value is an absent one.
          const doc = documentReference(status, parts.map((p) => attachment(p.contentType || undefined, p.title || undefined, p.url)));
          const expected = csvAttachments(doc).length > 0 ? [interaction] : [];
          expect(await firing(interaction, doc)).toEqual(expected);
        }
      ),
      { numRuns: 300, seed: 20260101 }
    );
  });
});
