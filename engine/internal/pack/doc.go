// Package pack holds the msgpack primitives the log's formats are built
// from, shared by the envelope (engine/entry) and the command bodies
// (engine):
//
//   - Scanner, the fast path: it reads, without allocating, exactly the
//     forms our encoders write (fix/16/32-bit maps and arrays,
//     str8/16/32 and bin, unsigned integers) and marks anything else bad;
//   - Reader, the reference: the msgpack Decoder with explicit limits,
//     which decides what is an error and says why;
//   - Writer, which keeps the first encoding error;
//   - Span, the extent of one msgpack value of any form, without
//     recursion, so that a body can be carried without being read.
//
// The engine and the envelope decode with the Scanner first and fall back
// to the Reader for anything the Scanner does not take; fuzz tests hold
// the two to the same result.
package pack
