// Compiled into every GPU backend library ragtune builds: the identity of
// the ggml sources it came from, which the binary compares with its own
// before it lets ggml load the library (bindings/device.go).
__attribute__((visibility("default"))) const char *ragtune_ggml_source_id(void) {
	return RAGTUNE_GGML_SOURCE_ID;
}
