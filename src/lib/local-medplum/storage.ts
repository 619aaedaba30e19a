import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { LocalClock } from './clock';

/** The server presigns storage URLs for one hour (packages/server/src/storage/presign.ts). */
const PRESIGNED_URL_LIFETIME_MS = 60 * 60 * 1000;

/** A storage URL taken apart: the Binary it names, and whether its signature holds. */
export interface StorageTarget {
  readonly binaryId: string;
  /** Undefined when the URL carries no `Signature` (the server would answer 401; see docs). */
  readonly signatureValid: boolean | undefined;
}

/**
 * The server's presigned storage URLs: `<storageBaseUrl><id>/<versionId>?Expires=<epoch s>&Signature=...`.
 * Self-hosted, `storageBaseUrl` is `<baseUrl>storage/`; hosted Medplum serves bytes from another host
 * (e.g. `https://storage.medplum.com/binary/`). Both forms are recognised, whichever is configured, so
 * that a download of either reaches the same store.
 *
 * The signature is an HMAC-SHA256 (hex) of the URL without it, under a key made per instance; the
 * server signs with its RSA signing key (base64), which nothing here can check.
 */
export class StorageUrls {
  readonly storageBaseUrl: string;
  private readonly prefixes: readonly string[];
  private readonly clock: LocalClock;
  private readonly key = randomBytes(32);

  constructor(baseUrl: string, storageBaseUrl: string | undefined, clock: LocalClock) {
    const selfHosted = baseUrl + 'storage/';
    this.storageBaseUrl = ensureSlash(storageBaseUrl ?? selfHosted);
    this.prefixes = this.storageBaseUrl === selfHosted ? [selfHosted] : [this.storageBaseUrl, selfHosted];
    this.clock = clock;
  }

  /** A presigned URL for the Binary's current version, valid for an hour on the server's clock. */
  presign(binaryId: string, versionId: string | undefined): string {
    const url = new URL(this.storageBaseUrl + encodeURIComponent(binaryId) + (versionId ? '/' + versionId : ''));
    const expires = Math.floor((this.clock.now() + PRESIGNED_URL_LIFETIME_MS) / 1000);
    url.searchParams.set('Expires', String(expires));
    url.searchParams.set('Signature', this.sign(url.toString()));
    return url.toString();
  }

  /** The Binary a storage URL names, or undefined when the URL is not a storage URL. */
  parse(rawUrl: string): StorageTarget | undefined {
    const prefix = this.prefixes.find((p) => rawUrl.startsWith(p));
    if (!prefix) {
      return undefined;
    }
    const url = new URL(rawUrl);
    const [id] = rawUrl.slice(prefix.length).split('?')[0].split('/');
    if (!id) {
      return undefined;
    }
    const signature = url.searchParams.get('Signature');
    if (signature === null) {
      return { binaryId: decodeURIComponent(id), signatureValid: undefined };
    }
    url.searchParams.delete('Signature');
    return { binaryId: decodeURIComponent(id), signatureValid: this.verify(url.toString(), signature) };
  }

  private sign(unsignedUrl: string): string {
    return createHmac('sha256', this.key).update(unsignedUrl).digest('hex');
  }

  private verify(unsignedUrl: string, signature: string): boolean {
    const expected = Buffer.from(this.sign(unsignedUrl), 'hex');
    const given = Buffer.from(signature, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }
}

function ensureSlash(url: string): string {
  return url.endsWith('/') ? url : url + '/';
}
