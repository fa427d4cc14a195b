# Source this before any go command that builds ragtune's cgo packages:
#   . scripts/env.sh
# ggml's CPU code comes from the ollama module through cgo. Without -O3 and the
# host's SIMD level it is built for baseline x86-64 and runs several times
# slower; the include folders let our own cgo files see llama.h, ggml.h, gguf.h.
# Keep the flags identical everywhere: Go's build cache is keyed on them, and a
# cold build of llama.cpp+ggml takes minutes.
OLLAMA_DIR="$(go list -m -f '{{.Dir}}' github.com/ollama/ollama)"
export CGO_ENABLED=1
export CGO_CFLAGS="${RAGTUNE_NATIVE_CFLAGS:--O3 -march=native}"
export CGO_CXXFLAGS="$CGO_CFLAGS"
export CGO_CPPFLAGS="-I$OLLAMA_DIR/llama/llama.cpp/include -I$OLLAMA_DIR/ml/backend/ggml/ggml/include"
# GGML_ABORT would otherwise try to attach gdb for a backtrace.
export GGML_NO_BACKTRACE=1
