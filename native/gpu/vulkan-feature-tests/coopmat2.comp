#version 460
// Probe: glslc reports "extension not supported: GL_NV_cooperative_matrix2" when it lacks it.
#extension GL_NV_cooperative_matrix2 : require
void main() {}
