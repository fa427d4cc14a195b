#version 460
// Probe: glslc reports "extension not supported: GL_KHR_cooperative_matrix" when it lacks it.
#extension GL_KHR_cooperative_matrix : require
void main() {}
