// Package bindings wraps ggml, gguf and llama.cpp (as vendored by the
// github.com/ollama/ollama module) for the rest of ragtune.
package bindings
