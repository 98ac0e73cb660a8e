import sharp, { type Metadata, type Sharp } from 'sharp';
import { AnalyzeError } from './errors.ts';
import { sniffImageFormat } from './imageSignature.ts';
import { reduceByBlocks, resizeArea } from './resample.ts';

/**
 * Decoding with sharp, as the preprocessing contract says (models/README.md, "Preprocessing
 * contract"): EXIF orientation applied; an embedded ICC profile converted to sRGB (a photo without
 * one is taken as sRGB); alpha dropped; 3 channels. A pixel limit against decompression bombs is
 * checked from the header before any pixel is decoded. A photo up to the detection size is decoded
 * once and serves both the detector and alignment. A larger one is halved by 2×2 block means while
 * it is at least twice the detection size (the first halving inside libvips, as it decodes), then
 * area-averaged to the detection copy (`resizeArea`, OpenCV's INTER_AREA), and those pixels are let
 * go at once; alignment later reads only the full-resolution region around the faces. The detection
 * copy is not left to libvips' shrink-on-load and Lanczos: YuNet's landmarks on large faces move by
 * pixels when the detection copy changes by a level here and there, so the copy must be one a
 * Python pipeline can make identically.
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

/** A rectangle of full-resolution pixels: `data` holds the region, whose top-left is (left, top). */
export interface RgbRegion extends RgbImage {
  left: number;
  top: number;
}

export interface PixelRect {
  left: number;
  top: number;
  width: number;
  height: number;
}

export interface DecodedPhoto {
  /** full-resolution size, EXIF-oriented */
  width: number;
  height: number;
  /** the copy the detector sees (the whole photo when it is at most the detection size) */
  detect: RgbImage;
  /** the whole photo at full resolution, when it was decoded anyway (no downscale needed) */
  full?: RgbImage;
  /**
   * Full-resolution pixels of `rect` (clipped to the photo): a view of `full` when there is one,
   * otherwise a decode of that region only.
   */
  readRegion(rect: PixelRect): Promise<RgbRegion>;
  format: string;
  /** gives back what `reserve` took for this photo (idempotent) */
  release(): void;
}

/**
 * Takes `bytes` of an in-flight budget and resolves with the function that gives them back
 * (pipeline/byteBudget.ts).
 */
export type Reserve = (bytes: number) => Promise<() => void>;

/**
 * The pixel bytes a photo holds while it is analysed: its detection copy twice (here and in the
 * inference worker) and, for a photo larger than that, the full-resolution region the faces are
 * aligned from (at worst the whole photo).
 */
export function pixelFootprint(width: number, height: number, detectMaxSide: number): number {
  const small = detectionSize(width, height, detectMaxSide);
  const detect = small.width * small.height * 3;
  return small.width === width && small.height === height ? 2 * detect : 2 * detect + width * height * 3;
}

// Every photo is decoded once: libvips' operation cache would only keep finished decodes (tens of
// MB each for large photos) alive for nothing.
sharp.cache(false);

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

/** The decode every path shares: EXIF orientation, no alpha, sRGB; `shape` crops or resizes. */
async function decodeRaw(
  bytes: Buffer,
  opts: DecodeOptions,
  shape: (image: Sharp) => Sharp = (image) => image,
): Promise<RgbImage> {
  try {
    const image = sharp(bytes, { limitInputPixels: opts.maxPixels, failOn: 'error' })
      .rotate()
      .removeAlpha()
      .toColourspace('srgb');
    const { data, info } = await shape(image).raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3)
      throw new AnalyzeError('CORRUPT_IMAGE', `decoded to ${info.channels} channels, expected 3`);
    return { data, width: info.width, height: info.height };
  } catch (err) {
    // the pixel count was checked from the header, so any failure here is in the pixels themselves
    throw err instanceof AnalyzeError ? err : corrupt(err);
  }
}

function checkSize(image: RgbImage, width: number, height: number): void {
  if (image.width !== width || image.height !== height) {
    throw new AnalyzeError(
      'CORRUPT_IMAGE',
      `decoded size ${image.width}×${image.height} differs from the expected ${width}×${height}`,
    );
  }
}

/** Size of the detection copy: long side at most `maxSide`, same aspect ratio. */
export function detectionSize(
  width: number,
  height: number,
  maxSide: number,
): { width: number; height: number } {
  const long = Math.max(width, height);
  if (long <= maxSide) return { width, height };
  return {
    width: Math.max(1, Math.round((width * maxSide) / long)),
    height: Math.max(1, Math.round((height * maxSide) / long)),
  };
}

export function clipRect(rect: PixelRect, width: number, height: number): PixelRect {
  const left = Math.max(0, Math.min(width - 1, Math.floor(rect.left)));
  const top = Math.max(0, Math.min(height - 1, Math.floor(rect.top)));
  const right = Math.max(left + 1, Math.min(width, Math.ceil(rect.left + rect.width)));
  const bottom = Math.max(top + 1, Math.min(height, Math.ceil(rect.top + rect.height)));
  return { left, top, width: right - left, height: bottom - top };
}

/** A region copied out of a decoded image (row by row). */
function cropOf(image: RgbImage, r: PixelRect): RgbRegion {
  if (r.left === 0 && r.top === 0 && r.width === image.width && r.height === image.height)
    return { ...image, left: 0, top: 0 };
  const data = Buffer.allocUnsafe(r.width * r.height * 3);
  for (let y = 0; y < r.height; y++) {
    const from = ((r.top + y) * image.width + r.left) * 3;
    image.data.copy(data, y * r.width * 3, from, from + r.width * 3);
  }
  return { data, width: r.width, height: r.height, left: r.left, top: r.top };
}

/**
 * Decodes a photo for analysis. `reserve`, when given, is asked for the photo's `pixelFootprint`
 * after the header checks and before any pixel is decoded; the photo's `release` gives it back.
 * `copier` makes the detection copy of a photo larger than the detection size.
 */
export async function decodePhoto(
  bytes: Buffer,
  options: Partial<DecodeOptions> = {},
  reserve?: Reserve,
  copier: DetectionCopier = detectionCopyPixels,
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
  const { width, height } = orientedSize(meta);
  const release = reserve ? await reserve(pixelFootprint(width, height, opts.detectMaxSide)) : () => {};
  try {
    return await decodePixels(bytes, opts, width, height, meta.format!, release, copier);
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * How many times the contract halves a `width`×`height` photo before area-averaging it to the
 * detection copy: while it is at least twice the copy on both axes (each halving drops a partial
 * last row or column).
 */
export function halvingsBefore(
  width: number,
  height: number,
  small: { width: number; height: number },
): number {
  let n = 0;
  for (let w = width, h = height; w >= 2 * small.width && h >= 2 * small.height; n++) {
    w = Math.floor(w / 2);
    h = Math.floor(h / 2);
  }
  return n;
}

/**
 * The first halving inside libvips: an affine scale of ½ with bilinear sampling, its input shifted
 * by half a pixel, samples every output pixel at the centre of a 2×2 block, which is the block's
 * mean rounded half up (tested against the block mean); libvips streams it, so the full-resolution
 * pixels never sit in memory. Its last row or column, a partial block, is cut off after.
 */
function halvedInDecode(image: Sharp): Sharp {
  return image.affine([0.5, 0, 0, 0.5], { interpolator: 'bilinear', idx: -0.5, idy: -0.5 });
}

/** What a detection copy is made from: the photo's bytes, its oriented size and the copy's size. */
export interface DetectionCopyTask {
  bytes: Uint8Array;
  opts: DecodeOptions;
  width: number;
  height: number;
  small: { width: number; height: number };
}

/**
 * Makes the detection copy of a photo larger than the detection size. The default runs here;
 * the analyzer passes one that runs `detectionCopyPixels` in its worker pool, so the decode's
 * full-resolution pixels and the JavaScript area filter stay off the main event loop.
 */
export type DetectionCopier = (task: DetectionCopyTask) => Promise<RgbImage>;

/**
 * The detection copy of a photo larger than the detection size (the contract's halvings, then
 * the area average). The decoded pixels are local to this call: they are let go when it returns.
 */
export async function detectionCopyPixels(task: DetectionCopyTask): Promise<RgbImage> {
  const { opts, width, height, small } = task;
  const bytes = Buffer.isBuffer(task.bytes)
    ? task.bytes
    : Buffer.from(task.bytes.buffer, task.bytes.byteOffset, task.bytes.byteLength);
  const halvings = halvingsBefore(width, height, small);
  let image: RgbImage;
  if (halvings === 0) {
    image = await decodeRaw(bytes, opts);
    checkSize(image, width, height);
  } else {
    const halved = await decodeRaw(bytes, opts, halvedInDecode);
    checkSize(halved, Math.ceil(width / 2), Math.ceil(height / 2));
    image = cropOf(halved, {
      left: 0,
      top: 0,
      width: Math.floor(width / 2),
      height: Math.floor(height / 2),
    });
    for (let i = 1; i < halvings; i++) image = reduceByBlocks(image, 2);
  }
  return { data: resizeArea(image, small.width, small.height), ...small };
}

/**
 * One photo's detection copy at a time (the queue below), so that photos decoded side by side do
 * not each hold their large pixels at once.
 */
async function detectionCopy(task: DetectionCopyTask, copier: DetectionCopier): Promise<RgbImage> {
  const turn = fullDecodes.then(() => copier(task));
  fullDecodes = turn.then(
    () => undefined,
    () => undefined,
  );
  const copy = await turn;
  checkSize(copy, task.small.width, task.small.height);
  return copy;
}

let fullDecodes: Promise<void> = Promise.resolve();

async function decodePixels(
  bytes: Buffer,
  opts: DecodeOptions,
  width: number,
  height: number,
  format: string,
  release: () => void,
  copier: DetectionCopier,
): Promise<DecodedPhoto> {
  const small = detectionSize(width, height, opts.detectMaxSide);
  if (small.width === width && small.height === height) {
    const full = await decodeRaw(bytes, opts);
    checkSize(full, width, height);
    return {
      width,
      height,
      detect: full,
      full,
      readRegion: async (rect) => cropOf(full, clipRect(rect, width, height)),
      format,
      release,
    };
  }
  const detect = await detectionCopy({ bytes, opts, width, height, small }, copier);
  return {
    width,
    height,
    detect,
    readRegion: async (rect) => {
      const r = clipRect(rect, width, height);
      const region = await decodeRaw(bytes, opts, (image) => image.extract(r));
      checkSize(region, r.width, r.height);
      return { ...region, left: r.left, top: r.top };
    },
    format,
    release,
  };
}
