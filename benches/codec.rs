//! Micro-benchmarks of the chunk codec and the chunker, beside BLAKE3 alone (the floor every
//! chunk pays): `cargo bench --bench codec`.

use chunkstore::{Chunk, ChunkKey, Chunker, ChunkerParams, Codec};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn noise(len: usize) -> Vec<u8> {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 32) as u8
        })
        .collect()
}

fn text(len: usize) -> Vec<u8> {
    let words = [
        "chunk ", "store ", "flist ", "layer ", "image ", "hash\n", "the ", "of ",
    ];
    let mut state = 7u64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        out.extend_from_slice(words[(state >> 61) as usize].as_bytes());
    }
    out.truncate(len);
    out
}

fn codec(c: &mut Criterion) {
    const SIZE: usize = 512 << 10;
    let mut group = c.benchmark_group("chunk-512KiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(30);
    for (name, data) in [("text", text(SIZE)), ("random", noise(SIZE))] {
        group.bench_function(format!("blake3/{name}"), |b| b.iter(|| ChunkKey::of(&data)));
        let mut codec = Codec::new(chunkstore::DEFAULT_LEVEL).unwrap();
        let chunk = Chunk::new(data.clone());
        group.bench_function(format!("hash+encode/{name}"), |b| {
            b.iter(|| codec.encode(&Chunk::new(data.clone())).unwrap())
        });
        let encoded = codec.encode(&chunk).unwrap();
        group.bench_function(format!("decode+verify/{name}"), |b| {
            b.iter(|| codec.decode(&chunk.key(), encoded.bytes()).unwrap())
        });
    }
    group.finish();
}

fn chunker(c: &mut Criterion) {
    const SIZE: usize = 64 << 20;
    let data = noise(SIZE);
    let mut group = c.benchmark_group("fastcdc-64MiB");
    group.throughput(Throughput::Bytes(SIZE as u64));
    group.sample_size(10);
    let mut chunker = Chunker::new(ChunkerParams::default()).unwrap();
    group.bench_function("cut", |b| {
        b.iter(|| chunker.chunk(&data[..], |_, _| Ok(())).unwrap())
    });
    group.finish();
}

criterion_group!(benches, codec, chunker);
criterion_main!(benches);
