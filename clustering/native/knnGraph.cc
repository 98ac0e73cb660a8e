// The kNN search of batch clustering in one call, for the x86-64-v3 build
// (devkit/buildHnswlibX86v3.mjs): one HNSW index over the indexed faces, built by `threads` threads
// inserting concurrently (hnswlib's own locking, as pip hnswlib's add_items), then every query
// searched on `threads` threads. The same hnswlib sources and parameters as hnswlib-node, without a
// JS array per vector in and out: vectors and results stay in the caller's typed arrays.
// Called from a worker thread (clustering/knnShardWorker.mjs): it blocks its caller until done.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "hnswlib/hnswlib.h"

namespace {

/** fn(i) for every i in [from, to) on `threads` threads; the first exception is rethrown. */
template <typename Fn>
void parallelFor(size_t from, size_t to, unsigned threads, Fn fn) {
  std::atomic<size_t> next(from);
  std::exception_ptr failure = nullptr;
  std::mutex failureLock;
  auto work = [&]() {
    for (;;) {
      const size_t i = next.fetch_add(1);
      if (i >= to) return;
      try {
        fn(i);
      } catch (...) {
        std::lock_guard<std::mutex> hold(failureLock);
        if (!failure) failure = std::current_exception();
        next.store(to);
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 1; t < threads; t++) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

uint32_t uintField(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsNumber()) throw std::invalid_argument(std::string(name) + " must be a number");
  return v.As<Napi::Number>().Uint32Value();
}

template <typename Array>
Array arrayField(const Napi::Object& o, const char* name, napi_typedarray_type type) {
  Napi::Value v = o.Get(name);
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
    throw std::invalid_argument(std::string(name) + " must be a typed array of the right type");
  return v.As<Array>();
}

/**
 * knnGraph({ vectors: Float32Array [n × dim], dim, indexed: Int32Array, queries: Int32Array,
 *            k, M, efConstruction, ef, seed, threads, outLabels: Int32Array [queries × k],
 *            outCos: Float32Array [queries × k] })
 * Row q of the outputs: the nearest `k` indexed faces of face queries[q], best first, as face
 * indices and cosines (1 − inner-product distance of unit vectors); −1 pads a short row.
 */
Napi::Value KnnGraph(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    if (info.Length() != 1 || !info[0].IsObject()) throw std::invalid_argument("expected one options object");
    const Napi::Object o = info[0].As<Napi::Object>();
    const auto vectors = arrayField<Napi::Float32Array>(o, "vectors", napi_float32_array);
    const auto indexed = arrayField<Napi::Int32Array>(o, "indexed", napi_int32_array);
    const auto queries = arrayField<Napi::Int32Array>(o, "queries", napi_int32_array);
    auto outLabels = arrayField<Napi::Int32Array>(o, "outLabels", napi_int32_array);
    auto outCos = arrayField<Napi::Float32Array>(o, "outCos", napi_float32_array);
    const size_t dim = uintField(o, "dim");
    const size_t k = uintField(o, "k");
    const size_t M = uintField(o, "M");
    const size_t efConstruction = uintField(o, "efConstruction");
    const size_t ef = uintField(o, "ef");
    const size_t seed = uintField(o, "seed");
    const unsigned threads = std::max<uint32_t>(1, uintField(o, "threads"));
    if (dim == 0 || k == 0) throw std::invalid_argument("dim and k must be positive");
    const size_t faces = vectors.ElementLength() / dim;
    const size_t n = indexed.ElementLength();
    const size_t nq = queries.ElementLength();
    if (outLabels.ElementLength() < nq * k || outCos.ElementLength() < nq * k)
      throw std::invalid_argument("outLabels and outCos need queries × k entries");
    const int32_t* idx = indexed.Data();
    const int32_t* asked = queries.Data();
    for (size_t i = 0; i < n; i++)
      if (idx[i] < 0 || static_cast<size_t>(idx[i]) >= faces) throw std::out_of_range("indexed face out of range");
    for (size_t q = 0; q < nq; q++)
      if (asked[q] < 0 || static_cast<size_t>(asked[q]) >= faces) throw std::out_of_range("query face out of range");

    const float* x = vectors.Data();
    int32_t* labels = outLabels.Data();
    float* cos = outCos.Data();
    std::fill(labels, labels + nq * k, -1);
    std::fill(cos, cos + nq * k, 0.0f);
    if (n == 0) return env.Undefined();

    hnswlib::InnerProductSpace space(dim);
    hnswlib::HierarchicalNSW<float> index(&space, n, M, efConstruction, seed);
    // the first point alone, so the threads start from an entry point (as pip hnswlib does)
    index.addPoint(x + static_cast<size_t>(idx[0]) * dim, static_cast<hnswlib::labeltype>(idx[0]));
    parallelFor(1, n, threads, [&](size_t i) {
      index.addPoint(x + static_cast<size_t>(idx[i]) * dim, static_cast<hnswlib::labeltype>(idx[i]));
    });
    index.setEf(std::max(ef, k));
    const size_t found = std::min(k, n);
    parallelFor(0, nq, threads, [&](size_t q) {
      auto best = index.searchKnn(x + static_cast<size_t>(asked[q]) * dim, found);
      for (size_t t = best.size(); t-- > 0;) {
        labels[q * k + t] = static_cast<int32_t>(best.top().second);
        cos[q * k + t] = 1.0f - best.top().first;
        best.pop();
      }
    });
    return env.Undefined();
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("knnGraph: ") + e.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("knnGraph", Napi::Function::New(env, KnnGraph));
  return exports;
}

}  // namespace

NODE_API_MODULE(knngraph, Init)
