// The per-pixel loops of a large photo's analysis, compiled; their JavaScript versions are the
// specification and the fallback, and give the same bytes (tested).
// - resizeArea, reduceByBlocks: the two downscaling filters of the preprocessing contract
//   (pipeline/resample.ts), compiled: the same integer weights, the same
// exact sums and the same rounding, so the bytes are identical (pipeline/resample.test.ts compares
// them). The area filter of a large photo's detection copy was the largest cost of a large photo
// outside the models in JavaScript (about 55 ms for 2300×1530 → 1600×1064); here it is a few ms.
// - writeNchw: interleaved uint8 RGB into a model's planar float input through per-channel tables
//   (pipeline/preprocess.ts): about 18 ms of JavaScript for a 1600 px detector input.
// Built by `npm ci`'s postinstall (devkit/buildNative.mjs) with portable flags: any x86-64 or arm64.
// Called from the inference worker thread: it blocks its caller until done.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

/** One axis of the area filter: per destination pixel, its source offsets and integer weights. */
struct AreaTable {
  std::vector<int32_t> source;
  std::vector<int32_t> weight;
  std::vector<int32_t> first;
};

// exactly resample.ts `areaTable`: weights in 1/destSize of a source pixel, slivers of at most
// 1e-3 of a pixel at either end of a footprint left out
AreaTable areaTable(int64_t sourceSize, int64_t destSize, int32_t sourceStep) {
  AreaTable t;
  t.first.resize(destSize + 1);
  const double sliver = 1e-3 * static_cast<double>(destSize);
  for (int64_t d = 0; d < destSize; d++) {
    t.first[d] = static_cast<int32_t>(t.source.size());
    const int64_t from = d * sourceSize;
    const int64_t to = from + sourceSize;
    for (int64_t s = from / destSize; s * destSize < to; s++) {
      const int64_t share = std::min(to, (s + 1) * destSize) - std::max(from, s * destSize);
      if (share < destSize && static_cast<double>(share) <= sliver) continue;
      t.source.push_back(static_cast<int32_t>(s * sourceStep));
      t.weight.push_back(static_cast<int32_t>(share));
    }
  }
  t.first[destSize] = static_cast<int32_t>(t.source.size());
  return t;
}

/** one source row reduced horizontally into `red` (w×3 sums, each at most 255·sourceWidth: int32) */
void reduceRow(const uint8_t* row, const AreaTable& xs, int32_t* red, int64_t w) {
  int32_t k = 0;
  for (int64_t dx = 0; dx < w; dx++, red += 3) {
    int32_t r = 0, g = 0, b = 0;
    for (const int32_t end = xs.first[dx + 1]; k < end; k++) {
      const uint8_t* p = row + xs.source[k];
      const int32_t alpha = xs.weight[k];
      r += p[0] * alpha;
      g += p[1] * alpha;
      b += p[2] * alpha;
    }
    red[0] = r;
    red[1] = g;
    red[2] = b;
  }
}

void resizeArea(const uint8_t* src, int64_t sw, int64_t sh, uint8_t* out, int64_t w, int64_t h) {
  const AreaTable xs = areaTable(sw, w, 3);
  const AreaTable ys = areaTable(sh, h, 1);
  const int64_t area = sw * sh;
  const int64_t twoArea = 2 * area;
  const double invTwoArea = 1.0 / static_cast<double>(twoArea);
  const int64_t rowBytes = w * 3;
  // the vertical sums are at most 255·sw·sh: int64
  std::vector<int32_t> reduced(rowBytes);
  std::vector<int64_t> sum(rowBytes);
  const int64_t stride = sw * 3;
  int64_t reducedRow = -1;
  uint8_t* o = out;
  for (int64_t dy = 0; dy < h; dy++) {
    for (int32_t j = ys.first[dy]; j < ys.first[dy + 1]; j++) {
      const int64_t sy = ys.source[j];
      if (sy != reducedRow) {
        reduceRow(src + sy * stride, xs, reduced.data(), w);
        reducedRow = sy;
      }
      const int64_t beta = ys.weight[j];
      const int32_t* red = reduced.data();
      int64_t* acc = sum.data();
      if (j == ys.first[dy])
        for (int64_t i = 0; i < rowBytes; i++) acc[i] = beta * red[i];
      else
        for (int64_t i = 0; i < rowBytes; i++) acc[i] += beta * red[i];
    }
    // the mean rounded to the nearest integer, a tie to the even one (OpenCV's cvRound): the
    // quotient from a double division, corrected to the exact integer one (a 64-bit integer
    // division per value cost more than the rest of the filter)
    for (int64_t i = 0; i < rowBytes; i++) {
      const int64_t up = 2 * sum[i] + area;
      int64_t q = static_cast<int64_t>(static_cast<double>(up) * invTwoArea);
      if (q * twoArea > up) q -= 1;
      else if ((q + 1) * twoArea <= up) q += 1;
      if (q * twoArea == up && (q & 1) == 1) q -= 1;
      *o++ = static_cast<uint8_t>(q);
    }
  }
}

// exactly resample.ts `reduceByBlocks` over the rectangle (left, top, bw×bh blocks of k×k)
void reduceByBlocks(const uint8_t* src, int64_t sw, int64_t k, int64_t left, int64_t top, int64_t bw,
                    int64_t bh, uint8_t* out) {
  const int64_t area = k * k;
  const int64_t half = area / 2;
  const int64_t stride = sw * 3;
  std::vector<uint32_t> sums(bw * 3);
  for (int64_t by = 0; by < bh; by++) {
    std::fill(sums.begin(), sums.end(), 0u);
    for (int64_t y = top + by * k; y < top + by * k + k; y++) {
      const uint8_t* p = src + y * stride + left * 3;
      for (int64_t bx = 0; bx < bw; bx++) {
        uint32_t r = 0, g = 0, b = 0;
        for (int64_t x = 0; x < k; x++, p += 3) {
          r += p[0];
          g += p[1];
          b += p[2];
        }
        sums[bx * 3] += r;
        sums[bx * 3 + 1] += g;
        sums[bx * 3 + 2] += b;
      }
    }
    uint8_t* o = out + by * bw * 3;
    for (int64_t i = 0; i < bw * 3; i++) o[i] = static_cast<uint8_t>((sums[i] + half) / area);
  }
}

Napi::Uint8Array bytesArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw std::invalid_argument(std::string(name) + " must be a Uint8Array");
  return info[i].As<Napi::Uint8Array>();
}

int64_t sizeArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsNumber()) throw std::invalid_argument(std::string(name) + " must be a number");
  const double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v != std::floor(v) || v > 1e9) throw std::invalid_argument(std::string(name) + " must be a size");
  return static_cast<int64_t>(v);
}

/** resizeArea(src, srcWidth, srcHeight, out, width, height): out ← the area-averaged copy */
Napi::Value ResizeArea(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto src = bytesArg(info, 0, "src");
    const int64_t sw = sizeArg(info, 1, "srcWidth"), sh = sizeArg(info, 2, "srcHeight");
    auto out = bytesArg(info, 3, "out");
    const int64_t w = sizeArg(info, 4, "width"), h = sizeArg(info, 5, "height");
    if (w < 1 || h < 1 || w > sw || h > sh) throw std::invalid_argument("not a reduction");
    if (static_cast<int64_t>(src.ElementLength()) < sw * sh * 3) throw std::invalid_argument("src too short");
    if (static_cast<int64_t>(out.ElementLength()) < w * h * 3) throw std::invalid_argument("out too short");
    resizeArea(src.Data(), sw, sh, out.Data(), w, h);
    return env.Undefined();
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("resizeArea: ") + e.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

/** reduceByBlocks(src, srcWidth, srcHeight, k, left, top, blocksWide, blocksHigh, out) */
Napi::Value ReduceByBlocks(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto src = bytesArg(info, 0, "src");
    const int64_t sw = sizeArg(info, 1, "srcWidth"), sh = sizeArg(info, 2, "srcHeight");
    const int64_t k = sizeArg(info, 3, "k");
    const int64_t left = sizeArg(info, 4, "left"), top = sizeArg(info, 5, "top");
    const int64_t bw = sizeArg(info, 6, "blocksWide"), bh = sizeArg(info, 7, "blocksHigh");
    auto out = bytesArg(info, 8, "out");
    if (k < 1 || k > 4096) throw std::invalid_argument("bad factor");
    if (left + bw * k > sw || top + bh * k > sh) throw std::invalid_argument("the rectangle is not inside the image");
    if (static_cast<int64_t>(src.ElementLength()) < sw * sh * 3) throw std::invalid_argument("src too short");
    if (static_cast<int64_t>(out.ElementLength()) < bw * bh * 3) throw std::invalid_argument("out too short");
    reduceByBlocks(src.Data(), sw, k, left, top, bw, bh, out.Data());
    return env.Undefined();
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("reduceByBlocks: ") + e.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

Napi::Float32Array floatsArg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw std::invalid_argument(std::string(name) + " must be a Float32Array");
  return info[i].As<Napi::Float32Array>();
}

/**
 * writeNchw(rgb, width, height, lutR, lutG, lutB, offR, offG, offB, out, offset, outWidth): pixel
 * (x, y)'s channel c becomes lutC[byte] at out[offset + offC + y·outWidth + x] (offC: the plane the
 * channel fills, in floats)
 */
Napi::Value WriteNchw(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    auto rgb = bytesArg(info, 0, "rgb");
    const int64_t width = sizeArg(info, 1, "width"), height = sizeArg(info, 2, "height");
    const float* lut[3] = {floatsArg(info, 3, "lutR").Data(), floatsArg(info, 4, "lutG").Data(),
                           floatsArg(info, 5, "lutB").Data()};
    for (int c = 0; c < 3; c++)
      if (floatsArg(info, 3 + c, "lut").ElementLength() < 256) throw std::invalid_argument("a table needs 256 entries");
    const int64_t off[3] = {sizeArg(info, 6, "offR"), sizeArg(info, 7, "offG"), sizeArg(info, 8, "offB")};
    auto out = floatsArg(info, 9, "out");
    const int64_t offset = sizeArg(info, 10, "offset"), outWidth = sizeArg(info, 11, "outWidth");
    if (outWidth < width) throw std::invalid_argument("outWidth below width");
    if (static_cast<int64_t>(rgb.ElementLength()) < width * height * 3) throw std::invalid_argument("rgb too short");
    const int64_t last = height == 0 ? 0 : offset + (height - 1) * outWidth + width;
    for (int c = 0; c < 3; c++)
      if (height > 0 && last + off[c] > static_cast<int64_t>(out.ElementLength()))
        throw std::invalid_argument("out too short");
    const uint8_t* p = rgb.Data();
    float* planes[3] = {out.Data() + off[0], out.Data() + off[1], out.Data() + off[2]};
    for (int64_t y = 0; y < height; y++) {
      const int64_t row = offset + y * outWidth;
      float* r = planes[0] + row;
      float* g = planes[1] + row;
      float* b = planes[2] + row;
      for (int64_t x = 0; x < width; x++, p += 3) {
        r[x] = lut[0][p[0]];
        g[x] = lut[1][p[1]];
        b[x] = lut[2][p[2]];
      }
    }
    return env.Undefined();
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("writeNchw: ") + e.what()).ThrowAsJavaScriptException();
    return env.Undefined();
  }
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("writeNchw", Napi::Function::New(env, WriteNchw));
  exports.Set("resizeArea", Napi::Function::New(env, ResizeArea));
  exports.Set("reduceByBlocks", Napi::Function::New(env, ReduceByBlocks));
  return exports;
}

}  // namespace

NODE_API_MODULE(pixels, Init)
