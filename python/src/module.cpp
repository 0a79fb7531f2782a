// The extension module xlt._xlt: exception mapping, the shared helpers of common.h and the
// registration of every binding file. The Python layer (python/xlt) wraps it.
#include <Python.h>

#include <pthread.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <new>
#include <streambuf>

#include "common.h"
#include "xlt/core/error.h"
#include "xlt/models/model.h"
#include "xlt/version.h"

namespace xlt::python {
namespace {

// std::cerr written through Python's sys.stderr, whole lines at a time: the library's messages
// ("xlt eval: ...", the study's log, "discarding the saved partial run") reach a notebook's
// output and pytest's capture instead of the terminal that started the kernel. Any thread may
// write (the GIL is taken per batch of lines, as the progress bridge does, and no lock is held
// while waiting for it); before Python is up, after its atexit hooks, or if sys.stderr fails,
// the text goes to the C stderr. Lines of two threads keep their own order, not necessarily
// each other's.
std::atomic<bool> python_stderr_closed{false};

class PythonStderr : public std::streambuf {
 public:
  // In a forked child (os.fork, multiprocessing) the mutex may have been held by a thread that
  // does not exist there, and what was pending is the parent's to write.
  void after_fork_in_child() {
    new (&mutex_) std::mutex();
    pending_.clear();
  }

 protected:
  int overflow(int c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    const char ch = static_cast<char>(c);
    return xsputn(&ch, 1) == 1 ? c : traits_type::eof();
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    std::string lines;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pending_.append(s, static_cast<size_t>(n));
      const size_t end = pending_.rfind('\n');
      if (end == std::string::npos) return n;
      lines = pending_.substr(0, end + 1);
      pending_.erase(0, end + 1);
    }
    emit(lines);
    return n;
  }
  // Only an explicit flush (std::flush, std::endl) or the end of the process gets here with a
  // partial line: std::cerr's per-insertion flush (unitbuf) is turned off when this is installed.
  int sync() override {
    std::string rest;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      rest.swap(pending_);
    }
    if (!rest.empty()) emit(rest);
    return 0;
  }

 private:
  static void emit(const std::string& text) {
#if PY_VERSION_HEX >= 0x030D0000
    const bool finalizing = Py_IsFinalizing() != 0;
#else
    const bool finalizing = _Py_IsFinalizing() != 0;
#endif
    if (!python_stderr_closed.load() && Py_IsInitialized() && !finalizing) {
      py::gil_scoped_acquire gil;
      // The caller's pending exception (if any) survives the write.
      PyObject *type = nullptr, *value = nullptr, *traceback = nullptr;
      PyErr_Fetch(&type, &value, &traceback);
      bool written = false, interrupted = false;
      PyObject* err = PySys_GetObject("stderr");  // borrowed
      if (err && err != Py_None) {
        PyObject* str =
            PyUnicode_DecodeUTF8(text.data(), static_cast<Py_ssize_t>(text.size()), "replace");
        PyObject* r = str ? PyObject_CallMethod(err, "write", "O", str) : nullptr;
        Py_XDECREF(str);
        written = r != nullptr;
        Py_XDECREF(r);
        // Python ran a pending SIGINT handler inside write(): the KeyboardInterrupt belongs to
        // the long call this line came from, so the signal is raised again for its next check.
        if (!written) interrupted = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) != 0;
        PyErr_Clear();
      }
      PyErr_Restore(type, value, traceback);
      if (interrupted) PyErr_SetInterrupt();
      if (written) return;
    }
    std::fwrite(text.data(), 1, text.size(), stderr);
  }

  std::mutex mutex_;
  std::string pending_;
};

PythonStderr* python_stderr = nullptr;

}  // namespace

py::object to_python(const nlohmann::json& j) {
  // Not a static py::object: it would be released after the interpreter has finalised.
  py::object loads = py::module_::import("json").attr("loads");
  return loads(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

nlohmann::json to_json(const py::handle& obj) {
  py::object dumps = py::module_::import("json").attr("dumps");
  return nlohmann::json::parse(py::str(dumps(obj)).cast<std::string>());
}

std::string fspath(const py::handle& obj) {
  return py::str(py::module_::import("os").attr("fspath")(obj)).cast<std::string>();
}

ProgressBridge::ProgressBridge(py::object callback)
    : callback_(std::make_shared<py::object>(std::move(callback))) {
  // The observer holds a plain pointer: the callback object is released here, with the GIL, and
  // the scope ends first, so no bar can reach it afterwards.
  py::object* cb = callback_.get();
  scope_ = std::make_unique<ScopedProgressObserver>([cb](const ProgressEvent& e) {
    py::gil_scoped_acquire gil;
    // Python's SIGINT handler only sets a flag while C++ runs without the GIL; deliver it here.
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    if (cb->is_none()) return;
    py::dict d;
    d["kind"] = e.kind == ProgressEvent::Kind::kStart    ? "start"
                : e.kind == ProgressEvent::Kind::kFinish ? "finish"
                                                         : "update";
    d["id"] = e.id;
    d["label"] = e.label;
    d["unit"] = e.unit;
    d["postfix"] = e.postfix;
    d["done"] = e.done;
    d["total"] = e.total;
    d["enabled"] = e.enabled;
    (*cb)(d);
  });
}

ProgressBridge::~ProgressBridge() {
  scope_.reset();
  // The callback's last reference goes with the GIL held (the destructor runs in Python's call).
  py::gil_scoped_acquire gil;
  callback_.reset();
}

at::Tensor to_host(const at::Tensor& t) {
  const bool integral = at::isIntegralType(t.scalar_type(), /*includeBool=*/true);
  return t.to(at::kCPU, integral ? at::kLong : at::kFloat).contiguous();
}

py::array to_numpy(const at::Tensor& t) {
  const bool integral = at::isIntegralType(t.scalar_type(), /*includeBool=*/true);
  at::Tensor c = to_host(t);
  std::vector<py::ssize_t> shape(c.sizes().begin(), c.sizes().end());
  if (integral) {
    py::array_t<int64_t> a(shape);
    std::memcpy(a.mutable_data(), c.data_ptr<int64_t>(), c.numel() * sizeof(int64_t));
    return std::move(a);
  }
  py::array_t<float> a(shape);
  std::memcpy(a.mutable_data(), c.data_ptr<float>(), c.numel() * sizeof(float));
  return std::move(a);
}

at::Tensor from_numpy_ids(const py::handle& obj, const char* what, bool required) {
  if (obj.is_none()) {
    if (required) throw UsageError(std::string(what) + ": required");
    return {};
  }
  py::module_ np = py::module_::import("numpy");
  py::array arr = np.attr("asarray")(obj);
  const char kind = arr.dtype().kind();
  if (kind != 'i' && kind != 'u' && kind != 'b') {
    throw UsageError(std::string(what) + ": expected integers, got dtype " +
                     py::str(arr.dtype()).cast<std::string>());
  }
  if (arr.ndim() == 1) arr = np.attr("expand_dims")(arr, 0);
  if (arr.ndim() != 2) {
    throw UsageError(std::string(what) + ": expected shape [batch, seq], got " +
                     std::to_string(arr.ndim()) + " dimensions");
  }
  py::array_t<int64_t, py::array::c_style | py::array::forcecast> ids(arr);
  at::Tensor t = at::empty({ids.shape(0), ids.shape(1)}, at::kLong);
  std::memcpy(t.data_ptr<int64_t>(), ids.data(), ids.size() * sizeof(int64_t));
  return t;
}

}  // namespace xlt::python

PYBIND11_MODULE(_xlt, m) {
  namespace py = pybind11;
  using namespace xlt::python;
  m.doc() = "xlt's C++ library (use the `xlt` package, not this module)";
  m.attr("__version__") = XLT_VERSION;
  m.attr("torch_version") = XLT_TORCH_VERSION;
  // Never freed: std::cerr may be written until the process ends.
  python_stderr = new PythonStderr();
  std::cerr.rdbuf(python_stderr);
  std::cerr.unsetf(std::ios_base::unitbuf);  // whole lines to Python, not each insertion
  ::pthread_atfork(nullptr, nullptr, [] { python_stderr->after_fork_in_child(); });
  // From Python's exit on, lines go straight to the C stderr (no GIL to wait for).
  py::module_::import("atexit").attr("register")(py::cpp_function([] {
    python_stderr_closed.store(true);
    std::cerr.flush();
  }));

  // The CLI's exit codes as Python types: usage and bad input -> ValueError, files -> OSError
  // (FileNotFoundError when one is missing), anything else -> RuntimeError. Same messages.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const xlt::FileNotFound& e) {
      PyErr_SetString(PyExc_FileNotFoundError, e.what());
    } catch (const xlt::IoError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const xlt::InputError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const xlt::UsageError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  m.def(
      "set_threads", [](int n) { return xlt::models::set_threads(n); }, py::arg("n") = 0,
      "Sets libtorch's CPU threads (0 = the cores not already busy); returns the count in use.");
  bind_tokenizer(m);
  bind_model(m);
  bind_pipelines(m);
}
