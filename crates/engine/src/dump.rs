//! Writing our outputs in the layout of the llama.cpp oracle files.
