// What the binding files share: JSON <-> Python conversion, the progress bridge (C++ Progress
// events -> a Python callable, Ctrl-C -> KeyboardInterrupt) and tensor -> NumPy copies.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <ATen/ATen.h>

#include <nlohmann/json.hpp>

#include "xlt/core/error.h"
#include "xlt/core/progress.h"

namespace xlt::python {

namespace py = pybind11;

// Through the json module: results dicts are small, and this keeps key order and float text.
py::object to_python(const nlohmann::json& j);
nlohmann::json to_json(const py::handle& obj);

// While alive, every xlt::Progress reports to `callback(event_dict)` (None: no display) with the
// GIL held, and a pending Ctrl-C (Python's SIGINT flag) is raised as KeyboardInterrupt from the
// computing thread at the next report. Construct with the GIL held, before releasing it.
class ProgressBridge {
 public:
  explicit ProgressBridge(py::object callback);
  ~ProgressBridge();
  ProgressBridge(const ProgressBridge&) = delete;
  ProgressBridge& operator=(const ProgressBridge&) = delete;

 private:
  std::shared_ptr<py::object> callback_;
  // For this thread only: calls running at once on other threads keep their own callbacks.
  std::unique_ptr<ScopedProgressObserver> scope_;
};

// A seed (any Python int in 0..2^64-1, as the CLI takes) or count; a negative one is a UsageError
// (ValueError) naming `what` (an unsigned binding argument gave pybind's TypeError with its whole
// signature instead).
inline uint64_t non_negative(const py::int_& value, const char* what) {
  if (py::int_(0).attr("__gt__")(value).cast<bool>()) {
    throw UsageError(std::string(what) + " must be a non-negative int, got " +
                     py::str(value).cast<std::string>());
  }
  if (value.attr("bit_length")().cast<int>() > 64) {
    throw UsageError(std::string(what) + " must be below 2**64, got " +
                     py::str(value).cast<std::string>());
  }
  return value.cast<uint64_t>();
}

// A float32 CPU copy of `t` as a NumPy array of the same shape (integers stay int64).
py::array to_numpy(const at::Tensor& t);
// What to_numpy copies from: on the CPU, int64 (integral types) or float32, contiguous. Needs no
// GIL; call it before taking the GIL back so that device copies do not hold it.
at::Tensor to_host(const at::Tensor& t);
// An int64 tensor [batch, seq] from anything NumPy can view as integers (lists, arrays, tensors
// through __array__). Throws xlt::UsageError naming `what` for another rank or a float dtype.
at::Tensor from_numpy_ids(const py::handle& obj, const char* what, bool required);

// os.fspath(obj): a str or a path-like object as a string.
std::string fspath(const py::handle& obj);

void bind_tokenizer(py::module_& m);
void bind_model(py::module_& m);
void bind_pipelines(py::module_& m);

}  // namespace xlt::python
