#version 460
// Probe: glslc reports "extension not supported: GL_EXT_bfloat16" when it lacks it.
#extension GL_EXT_bfloat16 : require
void main() {}
