#version 460
// Probe: glslc reports "extension not supported: GL_EXT_integer_dot_product" when it lacks it.
#extension GL_EXT_integer_dot_product : require
void main() {}
