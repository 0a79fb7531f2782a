// Typed errors for the whole library. Libraries throw, never abort; the CLI maps the type to an
// exit code: UsageError -> 1, InputError (and subclasses) -> 2, anything else -> 3.
// Messages say what, where (file:line, tensor name, config key) and expected vs found.
#pragma once

#include <stdexcept>
#include <string>

namespace xlt {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The command line was wrong (bad flag value, missing argument). Exit code 1.
class UsageError : public Error {
 public:
  using Error::Error;
};

// Something the user gave us (a file, a folder, a value) is bad or unusable. Exit code 2.
class InputError : public Error {
 public:
  using Error::Error;
};

class ConfigError : public InputError {
 public:
  using InputError::InputError;
};

class CheckpointError : public InputError {
 public:
  using InputError::InputError;
};

class TokenizerError : public InputError {
 public:
  using InputError::InputError;
};

class DataError : public InputError {
 public:
  using InputError::InputError;
};

// Reading or writing a file failed at the OS level (missing, not writable, disk full).
class IoError : public InputError {
 public:
  using InputError::InputError;
};

// A file or folder the user named does not exist. Its own type so that front ends need not read
// messages: the Python package raises FileNotFoundError for it (OSError for other IoErrors).
class FileNotFound : public IoError {
 public:
  using IoError::IoError;
};

// Exit code a front end should return for an exception (see the table above).
int exit_code_for(const std::exception& e) noexcept;

}  // namespace xlt
