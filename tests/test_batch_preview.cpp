// kiln-images --preview (apps/common/batch_preview.hpp, apps/common/tiny_font.hpp): the grid's size
// for a batch, tiles that hold the batch's pixels scaled up by a whole factor, class names drawn in
// the strip under their tile and nowhere else, and a PNG that stb_image reads back to the same
// pixels.
#include "../apps/common/batch_preview.hpp"

#include "error_message.hpp"
#include "temporary_directory.hpp"

#include <doctest/doctest.h>

#include <stb_image.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

using namespace kiln;
using kiln::testing::contains;
using kiln::testing::error_message;

namespace {

// A batch [count, height, width, channels] whose every value is different, and whole (so the PNG
// stores it exactly): (index * 7) % 251.
Tensor numbered_batch(int64_t count, int64_t height, int64_t width, int64_t channels) {
  Tensor batch(Shape{count, height, width, channels});
  for (int64_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<float>((i * 7) % 251);
  return batch;
}

float preview_pixel(const apps::BatchPreview& preview, int64_t row, int64_t column, int64_t channel) {
  return preview.image[(row * preview.layout.width + column) * preview.layout.channels + channel];
}

// The white pixels (caption ink) of channel 0 inside a rectangle of the preview.
int count_ink(const apps::BatchPreview& preview, int64_t top, int64_t left, int64_t height, int64_t width) {
  int ink = 0;
  for (int64_t row = top; row < top + height; ++row) {
    for (int64_t column = left; column < left + width; ++column) ink += preview_pixel(preview, row, column, 0) == 255.0f;
  }
  return ink;
}

int glyph_ink(char character) {
  int ink = 0;
  for (int row = 0; row < apps::tiny_font::kGlyphHeight; ++row) {
    for (int column = 0; column < apps::tiny_font::kGlyphWidth; ++column) ink += apps::tiny_font::ink(character, row, column);
  }
  return ink;
}

}  // namespace

TEST_CASE("tiny_font: every printable character has its own glyph, and only the space is blank") {
  std::set<std::array<uint8_t, apps::tiny_font::kGlyphHeight>> seen;
  for (char character = ' '; character <= '~'; ++character) {
    INFO("character '" << character << "'");
    CHECK(seen.insert(apps::tiny_font::glyph(character)).second);
    CHECK((glyph_ink(character) == 0) == (character == ' '));
    for (uint8_t row : apps::tiny_font::glyph(character)) CHECK(row < 32);  // 5 columns
  }
  CHECK(apps::tiny_font::glyph('\n') == apps::tiny_font::glyph('?'));
  CHECK(apps::tiny_font::glyph(static_cast<char>(0xC3)) == apps::tiny_font::glyph('?'));
  // 'T' is a bar across the top and a stem down the middle.
  for (int column = 0; column < 5; ++column) CHECK(apps::tiny_font::ink('T', 0, column));
  for (int row = 1; row < 7; ++row) {
    CHECK(apps::tiny_font::ink('T', row, 2));
    CHECK_FALSE(apps::tiny_font::ink('T', row, 0));
  }
  CHECK_FALSE(apps::tiny_font::ink('T', 7, 2));
  CHECK_FALSE(apps::tiny_font::ink('T', 0, 5));
}

TEST_CASE("batch_preview: the grid's size for a batch") {
  SUBCASE("ten 28x28 grey images: two rows of 8 tiles, scaled 3x so a caption fits") {
    const apps::BatchPreview preview = apps::batch_preview(numbered_batch(10, 28, 28, 1), {});
    const apps::BatchPreviewLayout& layout = preview.layout;
    CHECK(layout.tiles == 10);
    CHECK(layout.columns == 8);
    CHECK(layout.rows == 2);
    CHECK(layout.scale == 3);  // 84 pixels is the first multiple of 28 at least 64 wide
    CHECK(layout.tile_width == 84);
    CHECK(layout.tile_height == 84);
    CHECK(layout.caption_height == 10);
    CHECK(layout.width == 4 + 8 * (84 + 4));
    CHECK(layout.height == 4 + 2 * (84 + 10 + 4));
    CHECK(preview.image.shape() == Shape{200, 708, 1});
    CHECK(layout.caption_characters() == 14);
  }
  SUBCASE("a batch of 100 RGB images shows its first 64, in 8 rows") {
    const apps::BatchPreview preview = apps::batch_preview(numbered_batch(100, 32, 20, 3), {});
    CHECK(preview.layout.tiles == 64);
    CHECK(preview.layout.rows == 8);
    CHECK(preview.layout.scale == 4);  // 20 -> 80
    CHECK(preview.image.shape() == Shape{4 + 8 * (128 + 10 + 4), 4 + 8 * (80 + 4), 3});
  }
  SUBCASE("three large images: one row of 3, not scaled") {
    const apps::BatchPreview preview = apps::batch_preview(numbered_batch(3, 50, 100, 4), {});
    CHECK(preview.layout.columns == 3);
    CHECK(preview.layout.scale == 1);
    CHECK(preview.image.shape() == Shape{4 + 50 + 10 + 4, 4 + 3 * 104, 4});
  }
  SUBCASE("fewer columns, fewer tiles, no gap") {
    const apps::BatchPreview preview =
        apps::batch_preview(numbered_batch(5, 4, 4, 1), {}, {.columns = 2, .max_tiles = 3, .min_tile_width = 9, .gap = 0});
    CHECK(preview.layout.scale == 3);
    CHECK(preview.image.shape() == Shape{2 * (12 + 10), 2 * 12, 1});
  }
}

TEST_CASE("batch_preview: each tile holds its image's pixels, each a scale x scale block, in the background's frame") {
  const Tensor batch = numbered_batch(5, 6, 7, 3);
  const apps::BatchPreview preview = apps::batch_preview(batch, {}, {.columns = 3, .min_tile_width = 20});
  const apps::BatchPreviewLayout& layout = preview.layout;
  REQUIRE(layout.scale == 3);
  REQUIRE(layout.tile_width == 21);
  int mismatches = 0;
  for (int64_t tile = 0; tile < 5; ++tile) {
    const int64_t top = layout.tile_top(tile), left = layout.tile_left(tile);
    CHECK(top == 4 + (tile / 3) * (18 + 10 + 4));
    CHECK(left == 4 + (tile % 3) * (21 + 4));
    for (int64_t row = 0; row < 18; ++row) {
      for (int64_t column = 0; column < 21; ++column) {
        for (int64_t c = 0; c < 3; ++c) {
          const float expected = batch[((tile * 6 + row / 3) * 7 + column / 3) * 3 + c];
          mismatches += preview_pixel(preview, top + row, left + column, c) != expected;
        }
      }
    }
    // Just outside the tile is the background, on every side.
    CHECK(preview_pixel(preview, top - 1, left, 0) == 48.0f);
    CHECK(preview_pixel(preview, top, left - 1, 1) == 48.0f);
    CHECK(preview_pixel(preview, top, left + 21, 2) == 48.0f);
    CHECK(preview_pixel(preview, top + 18, left, 0) == 48.0f);  // the (empty) caption strip
  }
  CHECK(mismatches == 0);
  // The sixth cell of the grid has no image: background only.
  CHECK(count_ink(preview, layout.tile_top(5), layout.tile_left(5), 18, 21) == 0);
  CHECK(preview_pixel(preview, layout.tile_top(5) + 9, layout.tile_left(5) + 10, 0) == 48.0f);

  SUBCASE("pixels on another scale: white = 1 maps [0, 1] to 0-255") {
    Tensor unit(Shape{1, 2, 2, 1}, std::vector<float>{0.0f, 0.5f, 1.0f, 0.25f});
    const apps::BatchPreview scaled = apps::batch_preview(unit, {}, {.min_tile_width = 2, .white = 1.0f});
    CHECK(preview_pixel(scaled, 4, 4, 0) == 0.0f);
    CHECK(preview_pixel(scaled, 4, 5, 0) == 127.5f);
    CHECK(preview_pixel(scaled, 5, 4, 0) == 255.0f);
    CHECK(preview_pixel(scaled, 5, 5, 0) == 63.75f);
  }
  SUBCASE("an alpha channel: the background is opaque") {
    const apps::BatchPreview rgba = apps::batch_preview(numbered_batch(1, 2, 2, 4), {"a"});
    CHECK(preview_pixel(rgba, 0, 0, 0) == 48.0f);
    CHECK(preview_pixel(rgba, 0, 0, 3) == 255.0f);
  }
}

TEST_CASE("batch_preview: each class name is drawn under its tile, centred, in the font's glyphs") {
  // Black images, so any white pixel is caption ink.
  const Tensor black(Shape{3, 28, 28, 1}, 0.0f);
  const apps::BatchPreview preview = apps::batch_preview(black, {"T", "Coat", ""});
  const apps::BatchPreviewLayout& layout = preview.layout;
  REQUIRE(layout.tile_width == 84);

  // "T" alone: 5 pixels wide, centred in 84: (84 - 5) / 2 = 39 from the tile's left; 2 pixels
  // below the tile's bottom.
  const int64_t text_top = layout.caption_top(0) + 2, text_left = layout.tile_left(0) + 39;
  CHECK(text_top == 4 + 84 + 2);
  int mismatches = 0;
  for (int row = 0; row < 7; ++row) {
    for (int column = 0; column < 5; ++column) {
      const bool ink = preview_pixel(preview, text_top + row, text_left + column, 0) == 255.0f;
      mismatches += ink != apps::tiny_font::ink('T', row, column);
    }
  }
  CHECK(mismatches == 0);
  CHECK(count_ink(preview, layout.caption_top(0), layout.tile_left(0), layout.caption_height, layout.tile_width) == glyph_ink('T'));

  // "Coat" has all its glyphs' ink in its strip; the empty caption has none; no tile has any.
  const int coat_ink = glyph_ink('C') + glyph_ink('o') + glyph_ink('a') + glyph_ink('t');
  CHECK(count_ink(preview, layout.caption_top(1), layout.tile_left(1), layout.caption_height, layout.tile_width) == coat_ink);
  CHECK(count_ink(preview, layout.caption_top(2), layout.tile_left(2), layout.caption_height, layout.tile_width) == 0);
  CHECK(count_ink(preview, 0, 0, layout.height, layout.width) == glyph_ink('T') + coat_ink);
  for (int64_t tile = 0; tile < 3; ++tile) CHECK(count_ink(preview, layout.tile_top(tile), layout.tile_left(tile), 84, 84) == 0);
}

TEST_CASE("batch_preview: a caption longer than its tile is cut to fit; non-ASCII characters show as '?'") {
  const Tensor black(Shape{2, 6, 6, 1}, 0.0f);
  // Tiles of 6x6 scaled to 12 wide: two characters fit (2 * 6 - 1 = 11 pixels).
  const apps::BatchPreviewOptions options{.min_tile_width = 12, .gap = 2};
  const std::string long_name(500, 'W');
  const apps::BatchPreview preview = apps::batch_preview(black, {long_name, "Zz"}, options);
  const apps::BatchPreviewLayout& layout = preview.layout;
  REQUIRE(layout.tile_width == 12);
  REQUIRE(layout.caption_characters() == 2);
  CHECK(count_ink(preview, 0, 0, layout.height, layout.width) == 2 * glyph_ink('W') + glyph_ink('Z') + glyph_ink('z'));
  CHECK(count_ink(preview, layout.caption_top(0), layout.tile_left(0), layout.caption_height, 12) == 2 * glyph_ink('W'));

  // A tile narrower than one character: no caption, and no crash.
  const apps::BatchPreview narrow = apps::batch_preview(black, {long_name, "x"}, {.min_tile_width = 1, .gap = 0});
  CHECK(narrow.layout.caption_characters() == 1);  // 6 wide: one glyph of 5
  const apps::BatchPreview narrower = apps::batch_preview(Tensor(Shape{1, 3, 3, 1}), {"W"}, {.min_tile_width = 1});
  CHECK(narrower.layout.caption_characters() == 0);
  CHECK(count_ink(narrower, 0, 0, narrower.layout.height, narrower.layout.width) == 0);

  // "café": 'c', 'a', 'f', then one '?' for the two bytes of 'é'.
  const Tensor wide(Shape{1, 40, 40, 1}, 0.0f);
  const apps::BatchPreview accented = apps::batch_preview(wide, {"caf\xC3\xA9"});
  const apps::BatchPreview plain = apps::batch_preview(wide, {"caf?"});
  CHECK(accented.image.values().size() == plain.image.values().size());
  CHECK(std::equal(accented.image.values().begin(), accented.image.values().end(), plain.image.values().begin()));
  CHECK(count_ink(accented, 0, 0, accented.layout.height, accented.layout.width) ==
        glyph_ink('c') + glyph_ink('a') + glyph_ink('f') + glyph_ink('?'));
}

TEST_CASE("class_captions: class names from sparse or one-hot labels, numbers for labels naming no class") {
  const std::vector<std::string> names{"cat", "dog", "bird"};
  CHECK(apps::class_captions(Tensor(Shape{4}, std::vector<float>{2, 0, 1, 7}), names) ==
        std::vector<std::string>{"bird", "cat", "dog", "7"});
  CHECK(apps::class_captions(Tensor(Shape{2, 3}, std::vector<float>{0, 0, 1, 0, 1, 0}), names) == std::vector<std::string>{"bird", "dog"});
  CHECK(apps::class_captions(Tensor(Shape{2, 1}, std::vector<float>{1, -1}), names) == std::vector<std::string>{"dog", "-1"});
  CHECK(apps::class_captions(Tensor(Shape{1}, std::vector<float>{NAN}), names).at(0) != "cat");
}

TEST_CASE("batch_preview: what it cannot draw is an error naming it") {
  CHECK(contains(error_message<ShapeError>([] { apps::batch_preview(Tensor(Shape{28, 28, 1}), {}); }), "got 28x28x1"));
  CHECK(contains(error_message<ShapeError>([] { apps::batch_preview(Tensor(Shape{1, 4, 4, 5}), {}); }), "1 to 4 channels"));
  CHECK(contains(error_message<ValueError>([] { apps::batch_preview_layout(Shape{0, 4, 4, 1}); }), "empty"));
  // 64 images of 4096x4096 RGB would be a 13 GB grid: refused before any allocation.
  CHECK(contains(error_message<ValueError>([] { apps::batch_preview_layout(Shape{64, 4096, 4096, 3}); }), "too large"));
}

TEST_CASE("write_batch_preview: a PNG that stb_image reads back as the preview's pixels, clamped to 0-255") {
  kiln::testing::TemporaryDirectory directory;
  Tensor batch = numbered_batch(3, 5, 9, 3);
  batch[0] = 300.0f;  // brightness augmentation is not clipped: the PNG clamps
  batch[1] = -20.0f;
  const apps::BatchPreview preview = apps::batch_preview(batch, {"Sandal", "Bag", "Ankle boot"});
  const std::string path = directory.file("batch.png");
  apps::write_batch_preview(path, preview);

  int width = 0, height = 0, channels = 0;
  stbi_uc* pixels = stbi_load(path.c_str(), &width, &height, &channels, 0);
  REQUIRE(pixels != nullptr);
  CHECK(width == preview.layout.width);
  CHECK(height == preview.layout.height);
  CHECK(channels == 3);
  int mismatches = 0;
  for (int64_t i = 0; i < preview.image.size(); ++i) {
    const float expected = std::clamp(preview.image[i], 0.0f, 255.0f);
    mismatches += static_cast<float>(pixels[i]) != expected;
  }
  stbi_image_free(pixels);
  CHECK(mismatches == 0);
  CHECK(preview_pixel(preview, 4, 4, 0) == 300.0f);
  CHECK(directory.listing() == std::vector<std::string>{"batch.png"});  // no temporary left beside it

  // A folder that does not exist: an error naming the path, and no file.
  const std::string missing = directory.file("no/such/batch.png");
  CHECK(contains(error_message<FileError>([&] { apps::write_batch_preview(missing, preview); }), missing));
  CHECK_FALSE(std::filesystem::exists(missing));
  CHECK(directory.listing() == std::vector<std::string>{"batch.png"});
}
