import { nativeAddon, nativeAddonReason } from '../core/nativeAddon.ts';

/**
 * The size from which malloc maps a block on its own and gives it back when freed
 * (app/native/malloc.cc). Measured on `facepipe analyze` of 61 large photos (2000–4600 px), one run
 * each: glibc's moving threshold 16.5 CPU s / 757 MB peak; 32 MB 17.7 s / 706 MB; 16 MB 17.5 s /
 * 655 MB; 8 MB 18.5 s / 595 MB; 4 MB 18.4 s / 617 MB. The pages of a freshly mapped block cost
 * system time each time they are touched, so the smaller the threshold the more CPU; 16 MB keeps
 * the photos' full-resolution regions out of the heaps for about 6% more CPU.
 */
export const MMAP_THRESHOLD_BYTES = 16 * 2 ** 20;

/**
 * Applies the allocator tuning of the programs (call it first thing). Returns whether it was
 * applied, or why not (not glibc, the addon not built).
 */
export function tuneMemory(): { applied: boolean; reason: string } {
  const addon = nativeAddon<{ mmapThreshold(bytes: number): boolean }>('malloc');
  if (!addon) return { applied: false, reason: nativeAddonReason('malloc') };
  const applied = addon.mmapThreshold(MMAP_THRESHOLD_BYTES);
  return {
    applied,
    reason: applied
      ? `malloc maps blocks of ${MMAP_THRESHOLD_BYTES / 2 ** 20} MB and more on their own`
      : 'not glibc',
  };
}
