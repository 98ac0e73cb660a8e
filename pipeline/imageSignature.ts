/**
 * What the bytes of a file are, from their leading signature ("magic bytes") alone.
 *
 * Bad input is classified from this, never from a decoder's error message: libvips keeps one
 * error buffer for all threads, so a message can belong to another photo decoded at the same
 * time. A file with no known signature is NOT_AN_IMAGE; a file with one whose pixels cannot be
 * decoded is CORRUPT_IMAGE — the same answer on every run, whatever else is being decoded.
 */

/** The image formats facepipe accepts, as sharp names them. */
export type ImageFormat = 'jpeg' | 'png' | 'webp' | 'gif' | 'tiff' | 'heif' | 'avif';

const startsWith = (bytes: Uint8Array, signature: readonly number[], offset = 0): boolean =>
  bytes.length >= offset + signature.length && signature.every((b, i) => bytes[offset + i] === b);

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

/** ISO-BMFF brands (the `ftyp` box) of HEIF and AVIF still images. */
const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);

function isoBmffImage(bytes: Uint8Array): ImageFormat | undefined {
  if (!startsWith(bytes, ascii('ftyp'), 4)) return undefined;
  const boxSize = ((bytes[0]! << 24) | (bytes[1]! << 16) | (bytes[2]! << 8) | bytes[3]!) >>> 0;
  const end = Math.min(bytes.length, Math.max(boxSize, 16));
  // the major brand at 8, then compatible brands from 16, each 4 bytes
  const brands = [8, ...Array.from({ length: Math.max(0, (end - 16) >> 2) }, (_, i) => 16 + 4 * i)].map(
    (at) => String.fromCharCode(...bytes.subarray(at, at + 4)),
  );
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'avif';
  if (brands.some((b) => HEIF_BRANDS.has(b))) return 'heif';
  return undefined;
}

/** The accepted image format the bytes start like, or undefined (not an image we accept). */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return 'webp';
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return 'gif';
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) {
    return 'tiff';
  }
  return isoBmffImage(bytes);
}

/** How many leading bytes `sniffImageFormat` needs at most (for reading a file's head only). */
export const SIGNATURE_BYTES = 64;
