import type { WithId } from '@medplum/core';
import { getReferenceString } from '@medplum/core';
import type { Bot, Extension, Subscription } from '@medplum/fhirtypes';
import { isDeepStrictEqual } from 'node:util';
import { FHIRPATH_CRITERIA_EXTENSION, UPLOAD_FHIRPATH_CRITERIA, UPLOAD_SUBSCRIPTION_CRITERIA } from '../lib/input/uploads';

/**
 * The Subscriptions that run the bot when a CSV is uploaded. What counts as an upload is defined
 * once, in src/lib/input/uploads.ts (the bot and the cron sweep read the same rule): the search
 * criteria select every DocumentReference, and Medplum's FHIRPath criteria extension narrows them
 * to uploads (evaluated by @medplum/core's `isFhirCriteriaMet`, with %current and %previous).
 * A search criterion alone cannot say "one of these content types, or a title ending in .csv".
 */

export const SUPPORTED_INTERACTION_URL = 'https://medplum.com/fhir/StructureDefinition/subscription-supported-interaction';

/**
 * One Subscription per interaction: a Subscription without the extension also fires on delete, and
 * servers before 5.2 read only the first supported-interaction extension of a Subscription. Both
 * are needed: the SDK creates a DocumentReference first and adds the file URL in an update.
 */
export const SUBSCRIPTION_INTERACTIONS = ['create', 'update'] as const;
export type SubscriptionInteraction = (typeof SUBSCRIPTION_INTERACTIONS)[number];

/**
 * Criteria earlier versions of setup wrote (only `text/csv`, exact). Subscriptions of the bot with
 * these criteria are setup's own, and are brought up to date in place.
 */
export const LEGACY_UPLOAD_CRITERIA = ['DocumentReference?contenttype=text/csv'] as const;

/** Criteria setup recognises as its own: today's, then those it wrote before. */
const MANAGED_CRITERIA: readonly string[] = [UPLOAD_SUBSCRIPTION_CRITERIA, ...LEGACY_UPLOAD_CRITERIA];

export function wantedSubscription(bot: WithId<Bot>, interaction: SubscriptionInteraction): Subscription {
  return {
    resourceType: 'Subscription',
    status: 'active',
    reason: `Run Bot '${bot.name}' when a CSV upload is ${interaction === 'create' ? 'created' : 'updated'}`,
    criteria: UPLOAD_SUBSCRIPTION_CRITERIA,
    channel: { type: 'rest-hook', endpoint: getReferenceString(bot), payload: 'application/fhir+json' },
    extension: [
      { url: SUPPORTED_INTERACTION_URL, valueCode: interaction },
      { url: FHIRPATH_CRITERIA_EXTENSION, valueString: UPLOAD_FHIRPATH_CRITERIA },
    ],
  };
}

export function interactionsOf(subscription: Subscription): string[] {
  return (subscription.extension ?? []).filter((e) => e.url === SUPPORTED_INTERACTION_URL).map((e) => e.valueCode as string);
}

export function fhirPathCriteriaOf(subscription: Subscription): string | undefined {
  return subscription.extension?.find((e: Extension) => e.url === FHIRPATH_CRITERIA_EXTENSION)?.valueString;
}

/**
 * The bot's Subscriptions that setup manages for one interaction, best first: those with today's
 * criteria and FHIRPath, then today's criteria with another FHIRPath, then criteria setup wrote
 * before. Subscriptions with other criteria or interactions (made by hand) are not among them.
 */
export function managedSubscriptions<T extends Subscription>(candidates: readonly T[], interaction: SubscriptionInteraction): T[] {
  const rank = (s: T): number => {
    const criteria = MANAGED_CRITERIA.indexOf(s.criteria ?? '');
    return criteria < 0 ? -1 : 2 * criteria + (fhirPathCriteriaOf(s) === UPLOAD_FHIRPATH_CRITERIA ? 0 : 1);
  };
  return candidates
    .filter((s) => rank(s) >= 0 && isDeepStrictEqual(interactionsOf(s), [interaction]))
    .sort((a, b) => rank(a) - rank(b));
}

/** How setup's output names the Subscription of an interaction. */
export function describeSubscription(interaction: SubscriptionInteraction): string {
  return `Subscription ${UPLOAD_SUBSCRIPTION_CRITERIA} (CSV uploads) on ${interaction}`;
}
