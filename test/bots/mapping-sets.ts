// Small mapping sets for the stored-mapping tests, written into a temporary folder as a user's
// mapping folder would be (npm run setup -- --mapping <folder>).
import type { WithId } from '@medplum/core';
import type { Library, Project } from '@medplum/fhirtypes';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LocalMedplum } from '../../src/lib/local-medplum';

/**
 * `people` (Patient) and `staff` (Practitioner): the same columns, so a file fits both equally and
 * must name its mapping. Both read the sex codes from one dictionary, sexes.csv; a person may name
 * an Organization by identifier (a lookup the bot only searches).
 */
export function peopleAndStaff(): Record<string, string> {
  const mapping = (name: string, type: string, extra: Record<string, unknown> = {}): string =>
    JSON.stringify(
      {
        name,
        description: `${name}: one ${type} per row`,
        columns: {
          person_id: { required: true },
          family: { required: true },
          sex: { required: true },
          ...(name === 'people' ? { org: { description: 'an organization id, may be empty' } } : {}),
        },
        key: ['person_id'],
        codes: { sex: { file: 'sexes.csv', code: 'code', value: 'gender' } },
        resources: [
          {
            type,
            identifier: { system: `{$base}/${name}-id`, value: '{person_id}' },
            elements: {
              'name[0].family': { column: 'family', required: true },
              gender: { column: 'sex', map: 'sex' },
              ...extra,
            },
          },
        ],
      },
      null,
      2
    );
  return {
    'people.mapping.json': mapping('people', 'Patient', {
      managingOrganization: { reference: { type: 'Organization', identifier: { system: '{$base}/org-id', value: '{org}' } } },
    }),
    'staff.mapping.json': mapping('staff', 'Practitioner'),
    'sexes.csv': 'code,gender\nm,male\nf,female\n',
    // Data kept beside the mappings is not a dictionary: it is not stored.
    'notes.csv': 'a,b\n1,2\n',
  };
}

/** Writes the files into a new temporary folder; `done` removes it. */
export function mappingFolder(files: Record<string, string>): { folder: string; done: () => void } {
  const folder = mkdtempSync(join(tmpdir(), 'mapping-set-'));
  for (const [name, text] of Object.entries(files)) {
    writeFileSync(join(folder, name), text);
  }
  return { folder, done: () => rmSync(folder, { recursive: true, force: true }) };
}

export async function newProject(medplum: LocalMedplum): Promise<WithId<Project>> {
  return medplum.createResource<Project>({ resourceType: 'Project', name: 'CSV migration', features: ['bots', 'cron', 'transaction-bundles'] });
}

/** The project's mapping Libraries by table name (any status). */
export function mappingLibraries(medplum: LocalMedplum): Record<string, WithId<Library>> {
  return Object.fromEntries(medplum.allResources<Library>('Library').map((l) => [l.identifier?.[0]?.value ?? '', l]));
}

/** The text of a stored file, read as the bot reads it. */
export async function storedText(medplum: LocalMedplum, url: string): Promise<string> {
  const blob = (await medplum.download(url)) as Blob;
  return blob.text();
}

/**
 * Replaces a file of a mapping Library the way the Medplum app does: a new Binary uploaded as an
 * attachment (its url a presigned storage URL), put in place of the old attachment. The file is
 * uploaded as text/plain: the local Medplum would take an application/json upload for a FHIR
 * resource (the real server stores its bytes).
 */
export async function editLibraryFile(medplum: LocalMedplum, library: Library, title: string, text: string): Promise<WithId<Library>> {
  const attachment = await medplum.createAttachment({ data: text, contentType: 'text/plain', filename: title });
  const current = await medplum.readResource('Library', library.id as string);
  return medplum.updateResource({
    ...current,
    content: (current.content ?? []).map((a) => (a.title === title ? { ...a, url: attachment.url, hash: undefined, size: undefined } : a)),
  });
}
