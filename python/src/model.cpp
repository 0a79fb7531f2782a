// xlt.Model: a loaded checkpoint (BERT, XLM-R, XGLM) with Hugging Face's forward outputs as
// NumPy arrays. A model is not safe for concurrent forwards (xlt/models/model.h), so calls on one
// model are serialised by a mutex; the GIL is released while it computes.
#include <c10/core/InferenceMode.h>

#include <cstring>
#include <mutex>

#include "common.h"
#include "model_handle.h"
#include "xlt/core/error.h"
#include "xlt/io/hub_cache.h"

namespace xlt::python {

std::shared_ptr<ModelHandle> ModelHandle::load(const std::string& spec,
                                               const models::LoadOptions& options) {
  auto h = std::make_shared<ModelHandle>();
  const io::ModelLocation loc = io::resolve_model_location(spec);
  h->model = models::load_model(loc.path, options);
  h->path = loc.path;
  h->spec = spec;
  return h;
}

namespace {

py::dict forward(ModelHandle& h, const py::object& input_ids, const py::object& attention_mask,
                 const py::object& token_type_ids, const py::object& labels, bool hidden_states,
                 bool attentions) {
  models::ModelInputs in;
  in.input_ids = from_numpy_ids(input_ids, "input_ids", true);
  if (in.input_ids.numel() == 0) {
    throw UsageError("input_ids: an empty batch (shape [" + std::to_string(in.input_ids.size(0)) +
                     ", " + std::to_string(in.input_ids.size(1)) +
                     "]); give at least one sequence of at least one token");
  }
  in.attention_mask = from_numpy_ids(attention_mask, "attention_mask", false);
  in.token_type_ids = from_numpy_ids(token_type_ids, "token_type_ids", false);
  for (const at::Tensor* t : {&in.attention_mask, &in.token_type_ids}) {
    if (t->defined() && t->sizes() != in.input_ids.sizes()) {
      throw UsageError(std::string(t == &in.attention_mask ? "attention_mask" : "token_type_ids") +
                       ": shape [" + std::to_string(t->size(0)) + ", " +
                       std::to_string(t->size(1)) + "] differs from input_ids' [" +
                       std::to_string(in.input_ids.size(0)) + ", " +
                       std::to_string(in.input_ids.size(1)) + "]");
    }
  }
  if (!labels.is_none()) {
    py::array a = py::module_::import("numpy").attr("asarray")(labels);
    if (a.dtype().kind() == 'f') {
      // Regression [batch] or multi-label [batch, num_labels] targets.
      py::array_t<float, py::array::c_style | py::array::forcecast> f(a);
      std::vector<int64_t> shape(f.shape(), f.shape() + f.ndim());
      in.labels = at::empty(shape, at::kFloat);
      std::memcpy(in.labels.data_ptr<float>(), f.data(), f.size() * sizeof(float));
    } else if (h.model->kind() == models::ModelKind::kCausalLM) {
      in.labels = from_numpy_ids(labels, "labels", true);
    } else {
      in.labels = from_numpy_ids(labels, "labels", true).reshape({-1});
    }
  }
  models::ForwardOptions fo;
  fo.output_hidden_states = hidden_states;
  fo.output_attentions = attentions;
  models::ModelOutputs out;
  {
    py::gil_scoped_release nogil;
    ModelLock lock(h);
    c10::InferenceMode inference;
    out = h.model->forward(in, fo);
    // Device-to-host copies (which wait for the GPU) without the GIL too.
    for (at::Tensor* t : {&out.logits, &out.last_hidden_state, &out.pooler_output, &out.loss}) {
      if (t->defined()) *t = to_host(*t);
    }
    for (auto* v : {&out.hidden_states, &out.attentions}) {
      for (at::Tensor& t : *v) t = to_host(t);
    }
  }
  py::dict d;
  if (out.logits.defined()) d["logits"] = to_numpy(out.logits);
  if (out.last_hidden_state.defined()) d["last_hidden_state"] = to_numpy(out.last_hidden_state);
  if (out.pooler_output.defined()) d["pooler_output"] = to_numpy(out.pooler_output);
  if (out.loss.defined()) d["loss"] = out.loss.item<double>();
  auto tuple_of = [](const std::vector<at::Tensor>& v) {
    py::tuple t(v.size());
    for (size_t i = 0; i < v.size(); ++i) t[i] = to_numpy(v[i]);
    return t;
  };
  if (hidden_states) d["hidden_states"] = tuple_of(out.hidden_states);
  if (attentions) d["attentions"] = tuple_of(out.attentions);
  return d;
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<ModelHandle, std::shared_ptr<ModelHandle>>(
      m, "Model", "A Hugging Face checkpoint loaded into libtorch (BERT, XLM-R, XGLM)")
      .def_static(
          "from_pretrained",
          [](const std::string& path, const std::string& device, const std::string& dtype,
             int64_t num_labels, bool new_head, const py::int_& seed) {
            models::LoadOptions lo;
            lo.device = models::parse_device(device);
            lo.dtype = models::parse_dtype(dtype);
            lo.num_labels = num_labels;
            lo.new_head = new_head;
            lo.seed = non_negative(seed, "seed");
            py::gil_scoped_release nogil;
            return ModelHandle::load(path, lo);
          },
          py::arg("path"), py::arg("device") = "cpu", py::arg("dtype") = "float32",
          py::arg("num_labels") = 0, py::arg("new_head") = false, py::arg("seed") = 42,
          "Loads a folder (config.json + safetensors), a .safetensors file or a cached hub id. "
          "num_labels/new_head/seed as `xlt forward --num-labels` (a missing head is "
          "initialised from seed).")
      .def("forward", &forward, py::arg("input_ids"), py::arg("attention_mask") = py::none(),
           py::arg("token_type_ids") = py::none(), py::arg("labels") = py::none(),
           py::arg("hidden_states") = false, py::arg("attentions") = false,
           "One forward pass (no gradients): dict of float32 NumPy arrays named as Hugging "
           "Face's outputs (logits, last_hidden_state, pooler_output, hidden_states, "
           "attentions, loss).")
      .def(
          "save_pretrained",
          [](ModelHandle& h, const std::string& dir) {
            py::gil_scoped_release nogil;
            ModelLock lock(h);
            models::save_model(*h.model, dir);
          },
          py::arg("dir"), "Writes config.json, model.safetensors and the tokenizer files.")
      .def("named_parameters",
           [](ModelHandle& h) {
             // The model's mutex is only taken without the GIL: a call that holds the model
             // (evaluate, forward) takes the GIL for its progress reports while holding it.
             // NumPy arrays are allocated first (with the GIL), then filled one parameter at a
             // time, so the host memory needed is the arrays plus one parameter's copy.
             std::vector<std::pair<std::string, std::vector<int64_t>>> shapes;
             {
               py::gil_scoped_release nogil;
               ModelLock lock(h);
               for (const auto& [name, t] : h.model->named_parameters()) {
                 shapes.emplace_back(name, t.sizes().vec());
               }
             }
             std::vector<py::array_t<float>> arrays;
             std::vector<float*> data;
             for (const auto& [name, shape] : shapes) {
               arrays.emplace_back(std::vector<py::ssize_t>(shape.begin(), shape.end()));
               data.push_back(arrays.back().mutable_data());
             }
             {
               py::gil_scoped_release nogil;
               ModelLock lock(h);
               size_t i = 0;
               for (const auto& [name, t] : h.model->named_parameters()) {
                 if (i == shapes.size() || name != shapes[i].first) {
                   throw Error("named_parameters: the model changed while it was read");
                 }
                 const at::Tensor host = t.detach().to(at::kCPU, at::kFloat).contiguous();
                 std::memcpy(data[i], host.data_ptr<float>(), host.numel() * sizeof(float));
                 ++i;
               }
             }
             py::dict d;
             for (size_t i = 0; i < shapes.size(); ++i) d[shapes[i].first.c_str()] = arrays[i];
             return d;
           })
      .def_property_readonly("config",
                             [](ModelHandle& h) { return to_python(h.model->config().to_json()); })
      .def_property_readonly("model_type",
                             [](ModelHandle& h) { return io::model_type_name(h.model->type()); })
      .def_property_readonly("num_labels", [](ModelHandle& h) { return h.model->num_labels(); })
      .def_property_readonly("num_layers",
                             [](ModelHandle& h) { return h.model->config().num_hidden_layers; })
      .def_property_readonly("num_parameters",
                             [](ModelHandle& h) { return h.model->num_parameters(); })
      .def_property_readonly("device", [](ModelHandle& h) { return h.model->device().str(); })
      .def_property_readonly("dtype",
                             [](ModelHandle& h) { return models::dtype_name(h.model->dtype()); })
      .def_property_readonly("path", [](ModelHandle& h) { return h.path.string(); })
      .def_property_readonly("load_report",
                             [](ModelHandle& h) { return h.model->load_report().summary(); })
      .def("__repr__", [](ModelHandle& h) {
        return "Model(" + io::model_type_name(h.model->type()) + ", " +
               std::to_string(h.model->num_parameters()) + " parameters, " + h.path.string() + ")";
      });
}

}  // namespace xlt::python
