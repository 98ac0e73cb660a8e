// glibc's allocator tuned for facepipe's memory pattern, from inside the process (the MALLOC_*
// environment variables only act when set before the process starts). By default glibc raises its
// mmap threshold to the size of each large block freed (up to 32 MB), so from then on the 10–30 MB
// pixel buffers of large photos are carved out of the threads' heaps (libvips' decode threads,
// onnxruntime's, each worker's) and stay resident after they are freed: the peak resident memory of
// `facepipe analyze` on 61 large photos grew from 330 MB to 760 MB that way. A fixed threshold maps
// such blocks on their own and returns them when freed (app/memoryTuning.ts has the figures).
// (Limiting the number of arenas would help as much, but glibc fixes that limit when the first
// thread gets an arena, before any addon can set it.)
// Built by `npm ci`'s postinstall (devkit/buildNative.mjs); elsewhere than glibc it does nothing.
#include <napi.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

/**
 * mmapThreshold(bytes): blocks of at least `bytes` are mapped on their own and unmapped when freed,
 * and the threshold no longer moves by itself; returns whether it was applied
 */
Napi::Value MmapThreshold(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber()) {
    Napi::TypeError::New(env, "mmapThreshold: bytes must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int bytes = info[0].As<Napi::Number>().Int32Value();
#if defined(__GLIBC__) && defined(M_MMAP_THRESHOLD)
  return Napi::Boolean::New(env, bytes > 0 && mallopt(M_MMAP_THRESHOLD, bytes) == 1);
#else
  (void)bytes;
  return Napi::Boolean::New(env, false);
#endif
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("mmapThreshold", Napi::Function::New(env, MmapThreshold));
  return exports;
}

}  // namespace

NODE_API_MODULE(malloc, Init)
