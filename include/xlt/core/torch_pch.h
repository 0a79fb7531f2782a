// The precompiled libtorch header shared by torch-using modules: the narrow ATen/nn headers
// (not <torch/torch.h>, which costs ~25 s and ~1 GB per translation unit).
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
