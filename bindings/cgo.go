package bindings

// #cgo CXXFLAGS: -std=c++17
// #include <stdlib.h>
// #include "ggml.h"
// #include "ggml-backend.h"
// #include "ggml-cpu.h"
// #include "ggml-alloc.h"
// #include "gguf.h"
// #include "llama.h"
import "C"

import (
	_ "github.com/ollama/ollama/llama/llama.cpp/src"
)
