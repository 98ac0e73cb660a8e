import { nativeAddon } from '../core/nativeAddon.ts';

/**
 * pipeline/native/pixels.cc: the per-pixel loops of a large photo's analysis, compiled by `npm ci`
 * (devkit/buildNative.mjs). Each has a JavaScript version that is its specification and its
 * fallback (resample.ts, preprocess.ts), with the same bytes out (tested).
 */
export interface NativePixels {
  resizeArea(
    src: Uint8Array,
    srcWidth: number,
    srcHeight: number,
    out: Uint8Array,
    width: number,
    height: number,
  ): void;
  reduceByBlocks(
    src: Uint8Array,
    srcWidth: number,
    srcHeight: number,
    k: number,
    left: number,
    top: number,
    blocksWide: number,
    blocksHigh: number,
    out: Uint8Array,
  ): void;
  writeNchw(
    rgb: Uint8Array,
    width: number,
    height: number,
    lutR: Float32Array,
    lutG: Float32Array,
    lutB: Float32Array,
    offR: number,
    offG: number,
    offB: number,
    out: Float32Array,
    offset: number,
    outWidth: number,
  ): void;
}

let inUse: NativePixels | undefined = nativeAddon<NativePixels>('pixels');

/** the compiled loops, or undefined: the JavaScript versions run */
export function nativePixels(): NativePixels | undefined {
  return inUse;
}

/** Whether the compiled loops are in use; `useNativePixels(false)` takes the JavaScript ones (tests). */
export function useNativePixels(on?: boolean): boolean {
  if (on !== undefined) inUse = on ? nativeAddon<NativePixels>('pixels') : undefined;
  return inUse !== undefined;
}
