// kiln/io/npz.hpp — NumPy's .npz archives of float32 arrays, read and written without NumPy.
//
// An .npz is a zip file holding one .npy file per array. kiln writes exactly what numpy.savez
// writes (stored entries, dtype '<f4', C order) and reads that plus numpy.savez_compressed's
// deflated entries. Other dtypes, Fortran order and zip64 archives (over 4 GiB) are refused
// with a FileError. No global state: any thread may call these on distinct files.
#pragma once

#include "kiln/tensor.hpp"

#include <functional>
#include <span>
#include <string>
#include <vector>

namespace kiln::io {

// One array of an archive. `name` is the zip entry name without ".npy" and may contain '/'
// ("dense/kernel"); `values` are row-major and hold shape.element_count() floats.
struct NamedArray {
  std::string name;
  Shape shape;
  std::vector<float> values;
};

// Writes the arrays to `path` as an .npz that numpy.load reads, one entry "<name>.npy" each,
// in the order given. It is written through an AtomicFile (atomic_file.hpp): a crash or a full
// disk never leaves a half-written archive behind, and `path` keeps its old contents.
// Throws ShapeError if an array's values do not fill its shape, ValueError for an empty or
// repeated name, FileError if the file cannot be written or would exceed 4 GiB.
void write_npz(const std::string& path, std::span<const NamedArray> arrays);

// Reads every array of an .npz written by write_npz, numpy.savez or numpy.savez_compressed,
// in file order, names without ".npy". Anything kiln cannot hold (another dtype, Fortran
// order) or a damaged archive (truncated, bad CRC) is a FileError naming the path and entry.
// `check`, if given, sees every array's name and shape before any array's data is inflated or
// copied, and may throw to refuse the file: a file that is not what the caller expects then costs
// no more memory than its own bytes. Sizes in the file are checked against the file's length
// (and, for deflated entries, against what deflate can pack) before anything is allocated.
using ArrayCheck = std::function<void(const std::string& name, const Shape& shape)>;
std::vector<NamedArray> read_npz(const std::string& path, const ArrayCheck& check = {});

// The same in memory, for an .npz inside another archive (a .kiln model file's weights). `name`
// stands for the path in errors.
std::vector<unsigned char> npz_bytes(std::span<const NamedArray> arrays, const std::string& name);
std::vector<NamedArray> read_npz_bytes(std::span<const unsigned char> bytes, const std::string& name,
                                       const ArrayCheck& check = {});

}  // namespace kiln::io
