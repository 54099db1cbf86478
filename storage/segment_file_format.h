// The on-disk format of a segment's data file, version 1, and of the location of a batch in it
// (the value a segment column family keeps per batch). Every constant of the format lives here.
// Never renumber or reuse a value that has been written to disk.
//
// Why data files: a batch used to be the value of its RocksDB key, so every byte was written
// twice (the write-ahead log, then the memtable flush), and a 64 MiB flush stalled the WAL's
// fsync for tens of milliseconds. Now the writer appends each batch once to its segment's data
// file and fsyncs it; RocksDB keeps only a small location per batch (bench/README.md has the
// figures before and after).
//
// A data file is <data dir>/segments/<segment name>.evseg, where the segment name is that of
// its column family (meta_format.h). It is a file header followed by frames, back to back.
// All fixed-width integers are little-endian.
//
// File header (32 bytes):
//   offset size field         meaning
//   0      8    magic         the bytes 'E' 'V' 'L' 'O' 'G' 'S' 'E' 'G'
//   8      4    version       1
//   12     4    topic_id      the topic the segment belongs to
//   16     8    seq           the segment's sequence number within its topic
//   24     4    reserved      0
//   28     4    crc32c        CRC32C (Castagnoli) of bytes [0, 28)
//
// Frame (24-byte header, then the batch):
//   offset size field         meaning
//   0      4    magic         0x46535645: the bytes 'E' 'V' 'S' 'F'
//   4      4    partition     the partition the batch belongs to
//   8      8    base_offset   offset of the batch's first record
//   16     4    batch_length  bytes of the batch that follows (batch_format.h)
//   20     4    crc32c        CRC32C of bytes [0, 20) of this frame
//   24     ...  the batch, byte for byte as the producer (or leader) encoded it; it carries
//                its own CRC32C over its records
//
// A frame repeats the partition and base offset of its key so that a location that points at
// the wrong frame is detected, never served as another partition's data.
//
// Location (the value of a batch's key in the segment column family, 12 bytes):
//   0      8    position      where the batch's frame starts in the data file
//   8      4    batch_length  as in the frame
//
// Durability: frames are written to the data file before their locations go to RocksDB.
// Under FsyncPolicy::kAlways the data file's fsync runs at the same time as the RocksDB write
// of the locations and its write-ahead log fsync (file_syncer.h), and a batch is acknowledged
// only after both; under kInterval both are fsynced every interval, the data file first. So
// after a crash or power cut a location can point past what reached the disk, but only for a
// batch that was not acknowledged (kAlways) or was acknowledged within the last interval
// (kInterval). The metadata key "d" of meta_format.h holds, per segment, a length below which
// every frame is known durable (written with the next write group, at a clean close, or after
// each kInterval sync); at open, the frames past it are checked, and a partition whose frame
// is missing or damaged is truncated before that batch.
//
// Worked example: partition 3, base offset 10, a 64-byte batch, written right after the file
// header: the frame is at position 32:
//   45 56 53 46 | 03 00 00 00 | 0a 00 00 00 00 00 00 00 | 40 00 00 00 | <crc 4 bytes> | batch
// and its location is 20 00 00 00 00 00 00 00 | 40 00 00 00.
#pragma once

#include <cstdint>

namespace evlog::storage::segment_format {

inline constexpr char kFileMagic[8] = {'E', 'V', 'L', 'O', 'G', 'S', 'E', 'G'};
inline constexpr uint32_t kVersion = 1;
inline constexpr int kFileHeaderSize = 32;
inline constexpr int kFileHeaderCrcOffset = 28;

inline constexpr uint32_t kFrameMagic = 0x46535645;  // "EVSF" read as little-endian u32
inline constexpr int kFrameHeaderSize = 24;
inline constexpr int kFramePartitionOffset = 4;
inline constexpr int kFrameBaseOffsetOffset = 8;
inline constexpr int kFrameLengthOffset = 16;
inline constexpr int kFrameCrcOffset = 20;

inline constexpr int kLocationSize = 12;

inline constexpr char kDirectory[] = "segments";
inline constexpr char kFileSuffix[] = ".evseg";

}  // namespace evlog::storage::segment_format
