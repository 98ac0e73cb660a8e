import sharp, { type Metadata } from 'sharp';
import { AnalyzeError } from './errors.ts';
import { sniffImageFormat } from './imageSignature.ts';

/**
 * Decoding with sharp: EXIF orientation applied, 3-channel sRGB, a pixel limit against
 * decompression bombs (checked from the header before any pixel is decoded), and a downscaled
 * copy for the detector while alignment samples the full-resolution pixels.
 */

export interface DecodeOptions {
  /** largest accepted width×height (default 100 MP) */
  maxPixels: number;
  /** largest accepted encoded size in bytes (default 64 MiB) */
  maxBytes: number;
  /**
   * long side of the detection copy; larger images are downscaled for detection (default 1600:
   * the fixtures, ≤ 1366 px, are detected at full resolution, which is what the reference outputs
   * were measured at; a 4000 px phone photo is detected at 1600 px, its faces being large there)
   */
  detectMaxSide: number;
}

export const DEFAULT_DECODE: DecodeOptions = {
  maxPixels: 100_000_000,
  maxBytes: 64 * 1024 * 1024,
  detectMaxSide: 1600,
};

export interface RgbImage {
  /** interleaved RGB, width×height×3 */
  data: Buffer;
  width: number;
  height: number;
}

export interface DecodedPhoto {
  /** full resolution, EXIF-oriented */
  full: RgbImage;
  /** the copy the detector sees (the same object as `full` when no downscale is needed) */
  detect: RgbImage;
  format: string;
}

const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'tiff', 'gif', 'avif', 'heif']);

/**
 * A recognised image whose header or pixels the decoder rejects. The decoder's message is kept as
 * the human-readable reason only: the code never depends on it (libvips shares one error buffer
 * between threads, so the text can belong to another photo).
 */
function corrupt(err: unknown): AnalyzeError {
  const message = (err as Error)?.message ?? String(err);
  return new AnalyzeError('CORRUPT_IMAGE', `cannot decode the image: ${message.trim()}`, { cause: err });
}

/** Swapped dimensions for EXIF orientations 5–8 (90° rotations). */
function orientedSize(meta: Metadata): { width: number; height: number } {
  const rotated = (meta.orientation ?? 1) >= 5;
  return rotated
    ? { width: meta.height!, height: meta.width! }
    : { width: meta.width!, height: meta.height! };
}

async function readHeader(bytes: Buffer, opts: DecodeOptions): Promise<Metadata> {
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw corrupt(err);
  }
  if (!meta.format || !ACCEPTED_FORMATS.has(meta.format)) {
    throw new AnalyzeError('NOT_AN_IMAGE', `unsupported image format: ${meta.format ?? 'unknown'}`);
  }
  if (!meta.width || !meta.height) throw new AnalyzeError('CORRUPT_IMAGE', 'image has no dimensions');
  if (meta.width * meta.height > opts.maxPixels) {
    throw new AnalyzeError(
      'PIXEL_LIMIT',
      `image is ${meta.width}×${meta.height} = ${meta.width * meta.height} pixels, limit ${opts.maxPixels}`,
    );
  }
  return meta;
}

async function decodeFull(bytes: Buffer, opts: DecodeOptions): Promise<RgbImage> {
  try {
    const { data, info } = await sharp(bytes, { limitInputPixels: opts.maxPixels, failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3)
      throw new AnalyzeError('CORRUPT_IMAGE', `decoded to ${info.channels} channels, expected 3`);
    return { data, width: info.width, height: info.height };
  } catch (err) {
    // the pixel count was checked from the header, so any failure here is in the pixels themselves
    throw err instanceof AnalyzeError ? err : corrupt(err);
  }
}

/** The detection copy: long side at most `maxSide`, same aspect ratio. */
export async function downscaleForDetection(full: RgbImage, maxSide: number): Promise<RgbImage> {
  const long = Math.max(full.width, full.height);
  if (long <= maxSide) return full;
  const width = Math.max(1, Math.round((full.width * maxSide) / long));
  const height = Math.max(1, Math.round((full.height * maxSide) / long));
  const { data, info } = await sharp(full.data, {
    raw: { width: full.width, height: full.height, channels: 3 },
    limitInputPixels: false,
  })
    .resize(width, height, { fit: 'fill' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data, width: info.width, height: info.height };
}

export async function decodePhoto(
  bytes: Buffer,
  options: Partial<DecodeOptions> = {},
): Promise<DecodedPhoto> {
  const opts = { ...DEFAULT_DECODE, ...options };
  if (bytes.length === 0) throw new AnalyzeError('EMPTY_FILE', 'file is empty (0 bytes)');
  if (bytes.length > opts.maxBytes)
    throw new AnalyzeError('FILE_TOO_LARGE', `file is ${bytes.length} bytes, limit ${opts.maxBytes}`);
  if (!sniffImageFormat(bytes)) {
    throw new AnalyzeError(
      'NOT_AN_IMAGE',
      'not an image: no JPEG, PNG, WebP, GIF, TIFF, HEIF or AVIF signature at the start of the file',
    );
  }
  const meta = await readHeader(bytes, opts);
  const full = await decodeFull(bytes, opts);
  const expected = orientedSize(meta);
  if (full.width !== expected.width || full.height !== expected.height) {
    throw new AnalyzeError(
      'CORRUPT_IMAGE',
      `decoded size ${full.width}×${full.height} differs from header ${expected.width}×${expected.height}`,
    );
  }
  return { full, detect: await downscaleForDetection(full, opts.detectMaxSide), format: meta.format! };
}
