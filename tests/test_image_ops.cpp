// Tests of kiln/image/ops.hpp: decoding each format (pixels checked exactly for the lossless ones),
// channel conversion, every decode and read error naming its source, resizing against values
// worked out by hand from TensorFlow's half-pixel formulas, the pixel ops, and each random op's
// effect and reproducibility. Images are encoded with stb_image_write (GIFs by hand).
#include "kiln/image/ops.hpp"

#include "image_files.hpp"
#include "kiln/error.hpp"

#include <doctest/doctest.h>

#include "error_message.hpp"

#include <zlib.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

namespace {

using kiln::testing::error_message;
using kiln::testing::contains;

using kiln::FileError;
using kiln::Shape;
using kiln::ShapeError;
using kiln::Tensor;
using kiln::ValueError;
using kiln_test::Bytes;
namespace image = kiln::image;

std::vector<float> values(const Tensor& t) { return {t.values().begin(), t.values().end()}; }

std::vector<float> as_floats(const Bytes& bytes) { return {bytes.begin(), bytes.end()}; }

// A [height, width, channels] image whose pixel values are 0, 1, 2, ... in storage order.
Tensor counting_image(int64_t height, int64_t width, int64_t channels, float step = 1.0f) {
  Tensor t(Shape{height, width, channels});
  for (int64_t i = 0; i < t.size(); ++i) t[i] = static_cast<float>(i) * step;
  return t;
}



void check_close(const Tensor& actual, const std::vector<float>& expected, double tolerance = 1e-5) {
  REQUIRE(actual.size() == static_cast<int64_t>(expected.size()));
  for (int64_t i = 0; i < actual.size(); ++i) {
    CHECK_MESSAGE(std::abs(actual[i] - expected[static_cast<size_t>(i)]) <= tolerance,
                  "element " << i << ": " << actual[i] << " != " << expected[static_cast<size_t>(i)]);
  }
}

}  // namespace

// ---- decoding ----------------------------------------------------------------------------------------

TEST_CASE("decode_image: PNG grey, RGB and RGBA give [height, width, channels] floats 0-255, exactly") {
  const Bytes grey = {0, 64, 128, 255, 1, 2};                            // 2 rows x 3 columns
  const Bytes rgb = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};       // 2 x 2
  const Bytes rgba = {1, 2, 3, 4, 250, 251, 252, 253};                    // 1 x 2
  const Tensor g = image::decode_image(kiln_test::png_bytes(3, 2, 1, grey));
  CHECK(g.shape() == Shape{2, 3, 1});
  CHECK(values(g) == as_floats(grey));
  const Tensor c = image::decode_image(kiln_test::png_bytes(2, 2, 3, rgb));
  CHECK(c.shape() == Shape{2, 2, 3});
  CHECK(values(c) == as_floats(rgb));
  const Tensor a = image::decode_image(kiln_test::png_bytes(2, 1, 4, rgba));
  CHECK(a.shape() == Shape{1, 2, 4});
  CHECK(values(a) == as_floats(rgba));
}

TEST_CASE("decode_image: channels converts grey <-> RGB <-> RGBA as stb does") {
  const Bytes rgb = {200, 100, 50, 0, 0, 0};
  const Bytes encoded = kiln_test::png_bytes(2, 1, 3, rgb);
  // Grey is stb's luma (77 R + 150 G + 29 B) >> 8: (15400 + 15000 + 1450) >> 8 = 124.
  CHECK(values(image::decode_image(encoded, {.channels = 1})) == std::vector<float>{124, 0});
  // An added alpha channel is opaque.
  CHECK(values(image::decode_image(encoded, {.channels = 4})) == std::vector<float>{200, 100, 50, 255, 0, 0, 0, 255});
  // Grey to RGB repeats the value.
  const Tensor from_grey = image::decode_image(kiln_test::png_bytes(1, 1, 1, {77}), {.channels = 3});
  CHECK(from_grey.shape() == Shape{1, 1, 3});
  CHECK(values(from_grey) == std::vector<float>{77, 77, 77});
  CHECK_THROWS_AS(image::decode_image(encoded, {.channels = 5}), ValueError);
}

TEST_CASE("decode_image: BMP is lossless, JPEG is close, GIF gives its first frame") {
  const Bytes rgb = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120};  // 2 x 2
  const Tensor bmp = image::decode_image(kiln_test::bmp_bytes(2, 2, 3, rgb));
  CHECK(bmp.shape() == Shape{2, 2, 3});
  CHECK(values(bmp) == as_floats(rgb));

  // JPEG is lossy: a flat colour survives within a few levels.
  const Bytes flat(8 * 8 * 3, 0);
  Bytes orange = flat;
  for (size_t i = 0; i < orange.size(); i += 3) orange[i] = 240, orange[i + 1] = 120, orange[i + 2] = 20;
  const Tensor jpeg = image::decode_image(kiln_test::jpeg_bytes(8, 8, 3, orange));
  CHECK(jpeg.shape() == Shape{8, 8, 3});
  check_close(jpeg, as_floats(orange), 6.0);

  // Two frames: the first is indices 0,1 (black, red), the second 2,2 (green).
  const std::vector<std::array<uint8_t, 3>> palette = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}};
  const Bytes gif = kiln_test::gif_bytes(2, 1, {{0, 1}, {2, 2}}, palette);
  const Tensor first = image::decode_image(gif, {.channels = 3});
  CHECK(first.shape() == Shape{1, 2, 3});
  CHECK(values(first) == std::vector<float>{0, 0, 0, 255, 0, 0});
}

TEST_CASE("decode_image: empty, unknown, truncated and corrupt data are FileErrors naming the source") {
  const Bytes png = kiln_test::png_bytes(4, 4, 3, Bytes(48, 100));
  const std::string empty = error_message([] { image::decode_image(Bytes{}, {.source = "a/empty.png"}); });
  CHECK(contains(empty, "a/empty.png"));
  CHECK(contains(empty, "empty (0 bytes)"));

  const Bytes text = {'<', 'h', 't', 'm', 'l', '>'};
  const std::string unknown = error_message([&] { image::decode_image(text, {.source = "page.jpg"}); });
  CHECK(contains(unknown, "page.jpg"));
  CHECK(contains(unknown, "not a PNG, JPEG, GIF or BMP image"));
  CHECK(contains(unknown, "3c 68 74 6d 6c 3e"));

  const Bytes half_png(png.begin(), png.begin() + static_cast<std::ptrdiff_t>(png.size() / 2));
  const std::string truncated = error_message([&] { image::decode_image(half_png, {.source = "cut.png"}); });
  CHECK(contains(truncated, "cut.png"));
  CHECK(contains(truncated, "PNG"));

  const Bytes jpeg = kiln_test::jpeg_bytes(16, 16, 3, Bytes(16 * 16 * 3, 90));
  const Bytes half_jpeg(jpeg.begin(), jpeg.begin() + static_cast<std::ptrdiff_t>(jpeg.size() / 2));
  CHECK(contains(error_message([&] { image::decode_image(half_jpeg, {.source = "cut.jpg"}); }), "cut.jpg: the JPEG data is truncated"));

  const Bytes bmp = kiln_test::bmp_bytes(4, 4, 3, Bytes(48, 7));
  const Bytes half_bmp(bmp.begin(), bmp.begin() + static_cast<std::ptrdiff_t>(bmp.size() / 2));
  CHECK(contains(error_message([&] { image::decode_image(half_bmp, {.source = "cut.bmp"}); }), "cut.bmp: the BMP data is truncated"));

  // A PNG signature followed by noise.
  Bytes noise(png.begin(), png.begin() + 8);
  for (int i = 0; i < 100; ++i) noise.push_back(static_cast<uint8_t>(i * 37));
  const std::string corrupt = error_message([&] { image::decode_image(noise, {.source = "noise.png"}); });
  CHECK(contains(corrupt, "noise.png: the PNG data is corrupt or truncated"));
  CHECK_THROWS_AS(image::decode_image(noise), FileError);
}

TEST_CASE("read_file: the bytes of a file; a missing file or a folder is a FileError naming it") {
  kiln_test::TemporaryFolder folder;
  const Bytes bytes = {1, 2, 3, 0, 255};
  kiln_test::write_bytes(folder.file("x.bin"), bytes);
  CHECK(image::read_file(folder.file("x.bin")) == bytes);
  const std::string missing = error_message([&] { image::read_file(folder.path() + "/nope.png"); });
  CHECK(contains(missing, "nope.png"));
  CHECK_THROWS_AS(image::read_file(folder.path()), FileError);
  CHECK(contains(error_message([&] { image::read_file(folder.path()); }), "it is a folder"));
}

TEST_CASE("save_image: PNG and BMP round-trip exactly, JPEG closely; bad paths and shapes are errors") {
  kiln_test::TemporaryFolder folder;
  const Tensor picture = counting_image(3, 4, 3, 7.0f);  // values 0, 7, ..., 245
  for (const std::string name : {"p.png", "p.BMP"}) {
    image::save_image(folder.file(name), picture);
    CHECK(values(image::decode_image(image::read_file(folder.file(name)))) == values(picture));
  }
  image::save_image(folder.file("p.jpg"), Tensor(Shape{8, 8, 1}, 128.0f));
  check_close(image::decode_image(image::read_file(folder.file("p.jpg")), {.channels = 1}), std::vector<float>(64, 128.0f), 2.0);
  // Values are rounded and clamped to 0-255.
  image::save_image(folder.file("clamped.png"), Tensor(Shape{1, 3, 1}, {-20.0f, 99.6f, 300.0f}));
  CHECK(values(image::decode_image(image::read_file(folder.file("clamped.png")))) == std::vector<float>{0, 100, 255});

  CHECK_THROWS_AS(image::save_image(folder.file("p.tiff"), picture), ValueError);
  CHECK_THROWS_AS(image::save_image(folder.file("p.png"), Tensor(Shape{3, 4})), ShapeError);
  CHECK_THROWS_AS(image::save_image(folder.path() + "/no/such/folder/p.png", picture), FileError);
}

// ---- resizing ----------------------------------------------------------------------------------------

TEST_CASE("resize bilinear: 2x2 -> 4x4 with half-pixel centres") {
  // src = (dst + 0.5) * 0.5 - 0.5 = -0.25, 0.25, 0.75, 1.25: the first and last output pixel of
  // each axis repeat the border, the middle two are 1/4 and 3/4 of the way across.
  //   row 0 of [[0, 10], [20, 30]] along x: 0, 2.5, 7.5, 10; row 1: 20, 22.5, 27.5, 30;
  //   then along y with the same weights.
  const Tensor small(Shape{2, 2, 1}, {0, 10, 20, 30});
  const Tensor big = image::resize(small, {4, 4});
  CHECK(big.shape() == Shape{4, 4, 1});
  check_close(big, {0, 2.5, 7.5, 10,  //
                    5, 7.5, 12.5, 15,  //
                    15, 17.5, 22.5, 25,  //
                    20, 22.5, 27.5, 30});
}

TEST_CASE("resize bilinear: 4x4 -> 2x2 averages 2x2 blocks; 3 -> 2 columns weights 1/4 and 3/4") {
  // src = (dst + 0.5) * 2 - 0.5 = 0.5, 2.5: halfway between pixels 0 and 1, and 2 and 3.
  const Tensor counting = counting_image(4, 4, 1);  // v[y][x] = 4y + x
  check_close(image::resize(counting, {2, 2}), {(0 + 1 + 4 + 5) / 4.0f, (2 + 3 + 6 + 7) / 4.0f,
                                                (8 + 9 + 12 + 13) / 4.0f, (10 + 11 + 14 + 15) / 4.0f});
  // scale 1.5: src = 0.25 (pixels 0, 1, t = 0.25) and 1.75 (pixels 1, 2, t = 0.75).
  const Tensor row(Shape{1, 3, 1}, {0, 10, 20});
  check_close(image::resize(row, {1, 2}), {2.5, 17.5});
}

TEST_CASE("resize nearest: src = min(floor((dst + 0.5) * scale), size - 1)") {
  const Tensor counting = counting_image(4, 4, 1);
  // 4 -> 2: floor(0.5 * 2) = 1, floor(1.5 * 2) = 3.
  check_close(image::resize(counting, {2, 2}, {.interpolation = image::Interpolation::Nearest}), {5, 7, 13, 15});
  // 2 -> 4: floor((dst + 0.5) / 2) = 0, 0, 1, 1.
  const Tensor small(Shape{2, 2, 1}, {0, 10, 20, 30});
  check_close(image::resize(small, {4, 4}, {.interpolation = image::Interpolation::Nearest}),
              {0, 0, 10, 10, 0, 0, 10, 10, 20, 20, 30, 30, 20, 20, 30, 30});
}

TEST_CASE("resize: channels are interpolated separately; batches image by image; same size is the identity") {
  const Tensor two_channels(Shape{1, 2, 2}, {0, 100, 10, 200});
  check_close(image::resize(two_channels, {1, 4}), {0, 100, 2.5, 125, 7.5, 175, 10, 200});
  Tensor batch(Shape{2, 2, 2, 1}, {0, 10, 20, 30, 1, 1, 1, 1});
  const Tensor resized = image::resize(batch, {4, 4});
  CHECK(resized.shape() == Shape{2, 4, 4, 1});
  CHECK(resized[0] == 0.0f);
  CHECK(resized[15] == 30.0f);
  for (int64_t i = 16; i < 32; ++i) CHECK(resized[i] == 1.0f);
  const Tensor picture = counting_image(3, 5, 3, 0.37f);
  for (auto method : {image::Interpolation::Bilinear, image::Interpolation::Nearest}) {
    CHECK(values(image::resize(picture, {3, 5}, {.interpolation = method})) == values(picture));
  }
}

TEST_CASE("resize crop_to_aspect_ratio: the largest centred window of the target's aspect ratio") {
  // A 4-high, 2-wide image to 2x2: crop_height = min(4, 2 * 2 / 2) = 2, crop_width = min(2, 4) = 2,
  // top = (4 - 2) / 2 = 1: rows 1 and 2, then an identity resize.
  const Tensor tall = counting_image(4, 2, 1);  // rows {0,1} {2,3} {4,5} {6,7}
  check_close(image::resize(tall, {2, 2}, {.crop_to_aspect_ratio = true}), {2, 3, 4, 5});
  // A 2x6 image to 1x1: crop_width = min(6, 2 * 1 / 1) = 2, left = 2: the mean of columns 2 and 3.
  const Tensor wide = counting_image(2, 6, 1);
  check_close(image::resize(wide, {1, 1}, {.crop_to_aspect_ratio = true}), {(2 + 3 + 8 + 9) / 4.0f});
}

TEST_CASE("resize pad_to_aspect_ratio: fit inside, then pad with zeros, centred") {
  // 2 high, 4 wide into 4x4: ratio = max(4/4, 2/4) = 1, the image keeps its 2x4, top = (4 - 2) / 2 = 1.
  const Tensor wide = counting_image(2, 4, 1, 1.0f);
  Tensor shifted = wide;
  for (float& v : shifted.values()) v += 1.0f;  // no pixel is 0, so padding is told apart
  check_close(image::resize(shifted, {4, 4}, {.pad_to_aspect_ratio = true}),
              {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0});
  CHECK_THROWS_AS(image::resize(wide, {4, 4}, {.crop_to_aspect_ratio = true, .pad_to_aspect_ratio = true}), ValueError);
}

TEST_CASE("resize: bad shapes and sizes are errors naming the op") {
  CHECK(contains(error_message([] { image::resize(Tensor(Shape{28, 28}), {14, 14}); }), "resize expects an image"));
  CHECK(contains(error_message([] { image::resize(Tensor(Shape{28, 28}), {14, 14}); }), "[height, width, 1]"));
  CHECK_THROWS_AS(image::resize(Tensor(Shape{2, 2, 1}), {0, 3}), ValueError);
  CHECK(image::interpolation_from_name("nearest") == image::Interpolation::Nearest);
  CHECK(image::interpolation_name(image::Interpolation::Bilinear) == "bilinear");
  CHECK_THROWS_AS(image::interpolation_from_name("bicubic"), ValueError);
}

// ---- pixel ops -------------------------------------------------------------------------------------

TEST_CASE("rescale, flips, brightness, contrast and crops on known values") {
  const Tensor picture = counting_image(2, 3, 1);  // [[0, 1, 2], [3, 4, 5]]
  check_close(image::rescale(picture, 0.5f, -1.0f), {-1, -0.5, 0, 0.5, 1, 1.5});
  CHECK(values(image::flip_left_right(picture)) == std::vector<float>{2, 1, 0, 5, 4, 3});
  CHECK(values(image::flip_up_down(picture)) == std::vector<float>{3, 4, 5, 0, 1, 2});
  // Flipping keeps each pixel's channels together.
  const Tensor rgb(Shape{1, 2, 3}, {1, 2, 3, 4, 5, 6});
  CHECK(values(image::flip_left_right(rgb)) == std::vector<float>{4, 5, 6, 1, 2, 3});
  CHECK(values(image::adjust_brightness(picture, 10.0f)) == std::vector<float>{10, 11, 12, 13, 14, 15});
  // Contrast per channel around the channel's mean: channel 0 is {0, 10} (mean 5), channel 1 is flat.
  const Tensor two(Shape{1, 2, 2}, {0, 4, 10, 4});
  check_close(image::adjust_contrast(two, 2.0f), {-5, 4, 15, 4});
  check_close(image::adjust_contrast(two, 0.0f), {5, 4, 5, 4});
  CHECK(values(image::crop_to_bounding_box(picture, 1, 1, 1, 2)) == std::vector<float>{4, 5});
  CHECK(image::crop_to_bounding_box(picture, 0, 0, 2, 3).shape() == Shape{2, 3, 1});
  CHECK_THROWS_AS(image::crop_to_bounding_box(picture, 1, 1, 2, 2), ValueError);
  CHECK_THROWS_AS(image::flip_left_right(Tensor(Shape{4})), ShapeError);
}

TEST_CASE("pixel ops on a batch treat each image on its own") {
  Tensor batch(Shape{2, 1, 2, 1}, {0, 10, 100, 300});
  check_close(image::adjust_contrast(batch, 2.0f), {-5, 15, 0, 400});  // means 5 and 200
  CHECK(values(image::flip_left_right(batch)) == std::vector<float>{10, 0, 300, 100});
}

// ---- random ops --------------------------------------------------------------------------------------

TEST_CASE("random ops: the same seed gives the same result, one image matches image 0 of a batch") {
  const Tensor picture = counting_image(6, 5, 3);
  Tensor batch(Shape{3, 6, 5, 3});
  for (int64_t i = 0; i < batch.size(); ++i) batch[i] = picture[i % picture.size()];
  auto first_image = [&](const Tensor& t) {
    return std::vector<float>(t.values().begin(), t.values().begin() + t.size() / t.dim(0));
  };
  for (uint64_t seed : {1u, 2u, 99u}) {
    CHECK(values(image::random_flip_left_right(picture, seed)) == values(image::random_flip_left_right(picture, seed)));
    CHECK(values(image::random_flip_left_right(picture, seed)) == first_image(image::random_flip_left_right(batch, seed)));
    CHECK(values(image::random_flip_up_down(picture, seed)) == first_image(image::random_flip_up_down(batch, seed)));
    CHECK(values(image::random_brightness(picture, 30.0f, seed)) == first_image(image::random_brightness(batch, 30.0f, seed)));
    CHECK(values(image::random_contrast(picture, 0.5f, 1.5f, seed)) ==
          first_image(image::random_contrast(batch, 0.5f, 1.5f, seed)));
    CHECK(values(image::random_crop(picture, {3, 2}, seed)) == first_image(image::random_crop(batch, {3, 2}, seed)));
  }
}

TEST_CASE("random_flip_left_right / up_down: the image or its mirror, each about half the time") {
  const Tensor picture = counting_image(3, 4, 2);
  int left_right = 0, up_down = 0;
  constexpr int kSeeds = 400;
  for (uint64_t seed = 0; seed < kSeeds; ++seed) {
    const Tensor a = image::random_flip_left_right(picture, seed);
    const bool flipped = values(a) == values(image::flip_left_right(picture));
    CHECK((flipped || values(a) == values(picture)));
    left_right += flipped;
    const Tensor b = image::random_flip_up_down(picture, seed);
    const bool flipped_up = values(b) == values(image::flip_up_down(picture));
    CHECK((flipped_up || values(b) == values(picture)));
    up_down += flipped_up;
  }
  // Binomial(400, 1/2): the standard deviation is 10, so 160-240 is a 4-sigma band.
  CHECK(left_right > 160);
  CHECK(left_right < 240);
  CHECK(up_down > 160);
  CHECK(up_down < 240);
  // In a batch the images draw separately: 16 images all flipped alike would be a 1 in 2^15 event.
  Tensor batch(Shape{16, 3, 4, 2});
  for (int64_t i = 0; i < batch.size(); ++i) batch[i] = picture[i % picture.size()];
  const Tensor flipped_batch = image::random_flip_left_right(batch, 5);
  std::set<bool> outcomes;
  for (int64_t i = 0; i < 16; ++i) outcomes.insert(flipped_batch[i * picture.size()] != picture[0]);
  CHECK(outcomes.size() == 2);
}

TEST_CASE("random_brightness: one delta per image, within [-max_delta, max_delta], spread over the range") {
  const Tensor picture = counting_image(4, 4, 3);
  float smallest = 1e9f, largest = -1e9f;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const Tensor bright = image::random_brightness(picture, 25.5f, seed);
    const float delta = bright[0] - picture[0];
    for (int64_t i = 0; i < picture.size(); ++i) CHECK(bright[i] - picture[i] == doctest::Approx(delta));
    CHECK(delta >= -25.5f);
    CHECK(delta <= 25.5f);
    smallest = std::min(smallest, delta);
    largest = std::max(largest, delta);
  }
  CHECK(smallest < -20.0f);
  CHECK(largest > 20.0f);
  CHECK(values(image::random_brightness(picture, 0.0f, 3)) == values(picture));
  CHECK_THROWS_AS(image::random_brightness(picture, -1.0f, 3), ValueError);
}

TEST_CASE("random_contrast: a factor in [lower, upper) around each channel's mean, which is kept") {
  const Tensor picture = counting_image(4, 4, 2, 3.0f);
  std::set<int> factor_tenths;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    const Tensor out = image::random_contrast(picture, 0.5f, 1.5f, seed);
    for (int64_t c = 0; c < 2; ++c) {
      double in_mean = 0.0, out_mean = 0.0;
      for (int64_t p = 0; p < 16; ++p) in_mean += picture[p * 2 + c], out_mean += out[p * 2 + c];
      CHECK(out_mean / 16 == doctest::Approx(in_mean / 16).epsilon(1e-5));
      // factor = (out - mean) / (in - mean), the same for every pixel of the channel.
      const double factor = (out[c] - in_mean / 16) / (picture[c] - in_mean / 16);
      CHECK(factor >= 0.5 - 1e-4);
      CHECK(factor < 1.5 + 1e-4);
      for (int64_t p = 1; p < 16; ++p) {
        CHECK((out[p * 2 + c] - in_mean / 16) == doctest::Approx(factor * (picture[p * 2 + c] - in_mean / 16)).epsilon(1e-4));
      }
      factor_tenths.insert(static_cast<int>(factor * 10));
    }
  }
  CHECK(factor_tenths.size() >= 9);  // the draws cover [0.5, 1.5)
  CHECK_THROWS_AS(image::random_contrast(picture, 1.5f, 0.5f, 1), ValueError);
  CHECK_THROWS_AS(image::random_contrast(picture, -0.5f, 0.5f, 1), ValueError);
}

TEST_CASE("random_crop: a window of the image at every position that fits, none outside") {
  const Tensor picture = counting_image(4, 5, 1);  // v[y][x] = 5y + x
  std::set<std::pair<int, int>> corners;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    const Tensor crop = image::random_crop(picture, {2, 3}, seed);
    REQUIRE(crop.shape() == Shape{2, 3, 1});
    const int top = static_cast<int>(crop[0]) / 5, left = static_cast<int>(crop[0]) % 5;
    CHECK(values(crop) == values(image::crop_to_bounding_box(picture, top, left, 2, 3)));
    corners.insert({top, left});
  }
  CHECK(corners.size() == 3 * 3);  // tops 0-2, lefts 0-2
  CHECK(values(image::random_crop(picture, {4, 5}, 7)) == values(picture));
  CHECK_THROWS_AS(image::random_crop(picture, {5, 5}, 1), ValueError);
  CHECK(image::random_crop(Tensor(Shape{3, 4, 5, 1}), {2, 2}, 1).shape() == Shape{3, 2, 2, 1});
}

TEST_CASE("random ops: different seeds give different results") {
  const Tensor picture = counting_image(8, 8, 3);
  std::set<std::vector<float>> brightened, contrasted, cropped;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    brightened.insert(values(image::random_brightness(picture, 50.0f, seed)));
    contrasted.insert(values(image::random_contrast(picture, 0.2f, 1.8f, seed)));
    cropped.insert(values(image::random_crop(picture, {4, 4}, seed)));
  }
  CHECK(brightened.size() == 20);
  CHECK(contrasted.size() == 20);
  CHECK(cropped.size() > 10);
}

TEST_CASE("decode_image refuses a header that declares more pixels than PIL allows, before decoding") {
  // A PNG signature and an IHDR chunk declaring 15000x15000 RGB: 33 bytes that would ask for 2.7 GB of floats.
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const Bytes ihdr = {'I', 'H', 'D', 'R', 0, 0, 0x3A, 0x98, 0, 0, 0x3A, 0x98, 8, 2, 0, 0, 0};
  png.insert(png.end(), {0, 0, 0, 13});
  png.insert(png.end(), ihdr.begin(), ihdr.end());
  const uint32_t crc = static_cast<uint32_t>(crc32(0, ihdr.data(), static_cast<uInt>(ihdr.size())));
  png.insert(png.end(), {static_cast<uint8_t>(crc >> 24), static_cast<uint8_t>(crc >> 16), static_cast<uint8_t>(crc >> 8),
                         static_cast<uint8_t>(crc)});
  const std::string message = error_message<FileError>([&] { kiln::image::decode_image(png, {.source = "bomb.png"}); });
  CHECK(contains(message, "bomb.png"));
  CHECK(contains(message, "15000x15000"));
  CHECK(contains(message, "decompression bomb"));
  // A lower limit of the caller's: a 2x2 image passes at 4 pixels and is refused at 3.
  const Bytes two_by_two = kiln_test::png_bytes(2, 2, 1, Bytes(4, 7));
  CHECK(kiln::image::decode_image(two_by_two, {.max_pixels = 4}).dim(0) == 2);
  const std::string lowered = error_message<FileError>([&] { kiln::image::decode_image(two_by_two, {.max_pixels = 3}); });
  CHECK(contains(lowered, "more than the 3 kiln decodes"));
}
